// The double's tests watch handler processes through signals and /proc:
// POSIX only, as the platform it stands for (Flex Consumption) is Linux.

//go:build unix

package hostdouble

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/v2"
	"github.com/lithops-go/lithops/internal/azure/appsettings"
)

const azuriteConn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"

// TestMain lets the test binary act as a custom handler: with
// HOSTDOUBLE_TEST_HANDLER set it serves until killed.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HOSTDOUBLE_TEST_HANDLER"); mode != "" {
		serveTestHandler(mode)
		return
	}
	if pidFile := os.Getenv("HOSTDOUBLE_TEST_OWNER"); pidFile != "" {
		runOwner(pidFile)
		return
	}
	os.Exit(m.Run())
}

// runOwner starts a double of one instance, writes its handler's pid to
// pidFile and waits to be killed.
func runOwner(pidFile string) {
	svc, err := azqueue.NewServiceClientFromConnectionString(azuriteConn, nil)
	if err != nil {
		panic(err)
	}
	exe, _ := os.Executable()
	d, err := Start(context.Background(), Options{Command: []string{exe}, Env: []string{"HOSTDOUBLE_TEST_HANDLER=" + pidFile + ".log"},
		Queues: svc, Queue: "hostdouble-owner-never-polled", Function: "fn"})
	if err != nil {
		panic(err)
	}
	d.insts[0].mu.Lock()
	pid := d.insts[0].cmd.Process.Pid
	d.insts[0].mu.Unlock()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		panic(err)
	}
	select {}
}

// TestHandlersDieWithTheirOwner: a process that started a double and is
// killed (a test run stopped by a timeout or ^C) leaves no handler running.
func TestHandlersDieWithTheirOwner(t *testing.T) {
	pidFile := t.TempDir() + "/handler.pid"
	exe, _ := os.Executable()
	owner := exec.Command(exe)
	owner.Env = append(os.Environ(), "HOSTDOUBLE_TEST_OWNER="+pidFile)
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer owner.Process.Kill()
	var pid int
	for deadline := time.Now().Add(20 * time.Second); pid == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the owner did not start a handler")
		}
		raw, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(string(raw))
	}
	owner.Process.Kill()
	owner.Wait()
	for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("handler %d outlived the process that started it", pid)
		}
	}
}

// serveTestHandler answers 200 {} for messages containing "ok", 500
// otherwise, and records every request's DequeueCount in a file.
func serveTestHandler(log string) {
	port := os.Getenv(appsettings.CustomHandlerPort)
	http.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("POST /fn", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data     map[string]string
			Metadata map[string]any
		}
		if err := jsonDecode(r, &body); err != nil {
			w.WriteHeader(400)
			return
		}
		f, _ := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		fmt.Fprintf(f, "%v %s\n", body.Metadata["DequeueCount"], body.Data["msgIn"])
		f.Close()
		if strings.Contains(body.Data["msgIn"], "hang") {
			// A call that outlives the function timeout, running in a child
			// process of the handler as the runtime host's workers do.
			child := exec.Command("sleep", "600")
			if err := child.Start(); err == nil {
				f, _ := os.OpenFile(log+".children", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				fmt.Fprintf(f, "%d\n", child.Process.Pid)
				f.Close()
			}
			select {} // never answers
		}
		if strings.Contains(body.Data["msgIn"], "ok") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"Outputs":{},"Logs":[],"ReturnValue":null}`))
			return
		}
		w.WriteHeader(500)
	})
	http.ListenAndServe("127.0.0.1:"+port, nil)
}

func TestRedeliveryAndPoison(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:10001", 500*time.Millisecond)
	if err != nil {
		t.Skip("Azurite not running on 127.0.0.1:10001: start it with scripts/azurite.sh start")
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	svc, err := azqueue.NewServiceClientFromConnectionString(azuriteConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("hostdouble-%08x", rand.Uint32())
	q := svc.NewQueueClient(queue)
	if _, err := q.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer svc.DeleteQueue(context.Background(), queue, nil)
	defer svc.DeleteQueue(context.Background(), queue+"-poison", nil)
	log := t.TempDir() + "/requests.log"
	exe, _ := os.Executable()
	d, err := Start(ctx, Options{
		Command: []string{exe}, Env: []string{"HOSTDOUBLE_TEST_HANDLER=" + log},
		Queues: svc, Queue: queue, Function: "fn", Instances: 2, MaxDequeueCount: 3, RetryDelay: time.Second, Lease: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, m := range []string{"ok-1", "fail-1", "ok-2"} {
		q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(m)), nil)
	}
	q.EnqueueMessage(ctx, "not base64 at all!", nil)
	for d.Stats().Poisoned < 2 && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	s := d.Stats()
	if s.Succeeded != 2 || s.Poisoned != 2 || s.Failed != 3 {
		t.Fatalf("stats %+v: want 2 succeeded, 3 failed attempts of fail-1, 2 poisoned", s)
	}
	raw, _ := os.ReadFile(log)
	var counts []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if strings.Contains(line, "fail-1") {
			counts = append(counts, strings.Fields(line)[0])
		}
	}
	if strings.Join(counts, ",") != "1,2,3" {
		t.Fatalf("fail-1 was delivered with dequeue counts %v, want 1,2,3:\n%s", counts, raw)
	}
	// The request carries the message JSON-quoted twice, as the host does.
	if !strings.Contains(string(raw), `"\"ok-1\""`) && !strings.Contains(string(raw), `"ok-1"`) {
		t.Errorf("message not passed on:\n%s", raw)
	}
	resp, err := svc.NewQueueClient(queue+"-poison").PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(10))})
	if err != nil || len(resp.Messages) != 2 {
		t.Fatalf("poison queue: %v, %d messages", err, len(resp.Messages))
	}
	// A killed handler is restarted before the next message.
	d.Kill(0)
	d.Kill(1)
	q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte("ok-3")), nil)
	for d.Stats().Succeeded < 3 && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	if s := d.Stats(); s.Restarts < 1 || s.Succeeded != 3 {
		t.Fatalf("after kill: %+v", s)
	}
}

// TestFunctionTimeoutRestartsHandler: an invocation still running at
// FunctionTimeout fails (and is retried, then poisoned, as any failure), and
// the instance's handler is killed with everything it runs and restarted,
// as the Functions host does.
func TestFunctionTimeoutRestartsHandler(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:10001", 500*time.Millisecond)
	if err != nil {
		t.Skip("Azurite not running on 127.0.0.1:10001: start it with scripts/azurite.sh start")
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc, err := azqueue.NewServiceClientFromConnectionString(azuriteConn, nil)
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("hostdouble-%08x", rand.Uint32())
	q := svc.NewQueueClient(queue)
	if _, err := q.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer svc.DeleteQueue(context.Background(), queue, nil)
	defer svc.DeleteQueue(context.Background(), queue+"-poison", nil)
	log := t.TempDir() + "/requests.log"
	exe, _ := os.Executable()
	d, err := Start(ctx, Options{
		Command: []string{exe}, Env: []string{"HOSTDOUBLE_TEST_HANDLER=" + log},
		Queues: svc, Queue: queue, Function: "fn", Instances: 1, MaxDequeueCount: 2, RetryDelay: time.Second,
		Lease: 30 * time.Second, FunctionTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte("hang-1")), nil)
	for d.Stats().Poisoned < 1 && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	s := d.Stats()
	if s.Poisoned != 1 || s.Failed != 2 || s.TimedOut != 2 || s.Succeeded != 0 {
		t.Fatalf("stats %+v: want 2 timed-out, failed attempts of hang-1, then poisoned", s)
	}
	// The handler is restarted after each timeout, so the next message runs.
	q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte("ok-1")), nil)
	for d.Stats().Succeeded < 1 && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	if s := d.Stats(); s.Succeeded != 1 || s.Restarts != 2 {
		t.Fatalf("stats %+v: want ok-1 run on a handler restarted twice", s)
	}
	// Every call the handler ran died with it.
	raw, _ := os.ReadFile(log + ".children")
	pids := strings.Fields(string(raw))
	if len(pids) != 2 {
		t.Fatalf("children started: %q, want 2", pids)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d the timed-out handler ran survived the restart", pid)
		}
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
