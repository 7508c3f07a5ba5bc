package lithops_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/internal/protocol"
	"github.com/lithops-go/lithops/internal/runtimetest"
)

var chatty = lithops.Func("chatty", func(ctx context.Context, n int) (int, error) {
	fmt.Printf("stdout line of call %d\n", n)
	fmt.Fprintf(os.Stderr, "stderr line of call %d\n", n)
	log.Printf("log line of call %d", n)
	if n == 2 {
		fmt.Print(strings.Repeat("y", 2<<20)) // over the 1 MiB bound
	}
	return n, nil
})

func TestCallLogsCaptured(t *testing.T) {
	ctx := ctxT(t)
	var out runtimetest.Buffer
	e := newExecutor(t, lithops.WithMaxWorkers(1), lithops.WithWorkerOutput(&out))
	fs, err := lithops.Map(ctx, e, chatty, []int{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Results(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.Storage()
	for i := 0; i < 4; i++ {
		raw, err := st.GetBytes(ctx, st.Bucket(), protocol.LogKey(e.ID(), fs.At(i).JobID(), fs.At(i).CallID(), 0))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(zr)
		for _, want := range []string{fmt.Sprintf("stdout line of call %d", i), fmt.Sprintf("stderr line of call %d", i), fmt.Sprintf("log line of call %d", i)} {
			if !strings.Contains(string(text), want) {
				t.Errorf("call %d log lacks %q", i, want)
			}
		}
		for j := 0; j < 4; j++ {
			if j != i && strings.Contains(string(text), fmt.Sprintf("line of call %d\n", j)) {
				t.Errorf("call %d log holds call %d's output", i, j)
			}
		}
		if i == 2 && (len(text) > 1<<20+200 || !strings.Contains(string(text), "more bytes of output dropped")) {
			t.Errorf("call 2 log is %d bytes; want it bounded to 1 MiB with a note", len(text))
		}
	}
	// The output still reaches the worker output stream.
	if !strings.Contains(out.String(), "stdout line of call 3") {
		t.Errorf("output not forwarded:\n%.300s", out.String())
	}
}
