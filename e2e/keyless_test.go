package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/azure/appsettings"
	"github.com/lithops-go/lithops/internal/azure/deploy/armdeploy"
	"github.com/lithops-go/lithops/internal/azuredouble"
	"github.com/lithops-go/lithops/internal/procgroup"
	"github.com/lithops-go/lithops/internal/runtimetest"
	"github.com/lithops-go/lithops/storage/azblob"
)

// keylessMain is the user's program of the keyless run: a Map, a call
// whose worker writes and reads storage with the runtime's identity, and a
// call long enough for the client's poison-queue watcher to make a round.
const keylessMain = `package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lithops-go/lithops"
	_ "github.com/lithops-go/lithops/azure"
)

var double = lithops.Func("double", func(ctx context.Context, x int) (int, error) { return 2 * x, nil })

var roundTrip = lithops.Func("round_trip", func(ctx context.Context, key string) (string, error) {
	st := lithops.StorageFrom(ctx)
	if err := st.Put(ctx, st.Bucket(), key, strings.NewReader("written by a worker")); err != nil {
		return "", err
	}
	rc, err := st.Get(ctx, st.Bucket(), key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
})

var nap = lithops.Func("nap", func(ctx context.Context, d time.Duration) (string, error) {
	time.Sleep(d)
	return "rested", nil
})

func main() {
	lithops.Main(func(ctx context.Context) error {
		fexec, err := lithops.NewExecutor(ctx, lithops.WithRuntime(os.Args[1]))
		if err != nil {
			return err
		}
		defer fexec.Close()
		futs, err := lithops.Map(ctx, fexec, double, []int{1, 2, 3, 4, 5})
		if err != nil {
			return err
		}
		rt, err := lithops.CallAsync(ctx, fexec, roundTrip, "keyless/worker-object")
		if err != nil {
			return err
		}
		// Longer than the poison watcher's 10 s period.
		zz, err := lithops.CallAsync(ctx, fexec, nap, 12*time.Second)
		if err != nil {
			return err
		}
		res, err := futs.Results(ctx)
		if err != nil {
			return err
		}
		fmt.Println("results:", res)
		s, err := rt.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println("worker storage:", s)
		s, err = zz.Result(ctx)
		if err != nil {
			return err
		}
		fmt.Println("nap:", s)
		return nil
	})
}
`

// keyMaterial is what must appear nowhere in a keyless run: the Azurite
// account key and the marks of keys, connection strings and SAS tokens. A
// SAS signature is a query parameter (sig=, after ? or &, raw, XML-escaped
// or URL-encoded), not the letters "sig=" inside base64 such as a
// Content-MD5.
var keyMaterial = []*regexp.Regexp{
	regexp.MustCompile(regexp.QuoteMeta(azblob.DevAccountKey)),
	regexp.MustCompile(`AccountKey=`),
	regexp.MustCompile(`SharedAccessSignature`),
	regexp.MustCompile(`(?:[?&]|&amp;|%26|%3F)sig(?:=|%3D)`),
}

// TestKeylessAzure is issue 17 offline, end to end and without a key
// anywhere: Azurite over HTTPS (a certificate made here) with --oauth
// basic and an account key nobody is given, so only bearer tokens work;
// the CLI deploys a runtime through Resource Manager (the platform double:
// a user-assigned identity, its roles on the account, identity-based app
// settings); the runtime host runs under the Functions-host double with no
// connection string, its tokens from the managed-identity endpoint; the
// client and the CLI sign in as a user (DefaultAzureCredential's Azure CLI
// credential, a fake `az` that hands out JWTs). Every storage request goes
// through a recording proxy that refuses requests without a bearer token
// and those of the identity without the role; the test checks that each
// client path (submit, poll, completion queue, poison watcher, storage,
// jobs, logs, clean, doctor) worked and scans every app setting, message,
// record and log line for key material.
func TestKeylessAzure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module, starts Azurite and deploys")
	}
	azuriteBin, err := runtimetest.AzuriteBinary()
	if err != nil {
		t.Skipf("%v (scripts/azurite.sh start installs it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	tmp := t.TempDir()

	ca := newTestCert(t, tmp)
	blobPort, queuePort := startOAuthAzurite(t, ctx, azuriteBin, tmp, ca)

	const sub, rg = "00000000-0000-0000-0000-000000000000", "rg-keyless"
	accountScope := "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.Storage/storageAccounts/" + azblob.DevAccountName
	hostLog := &runtimetest.Buffer{}
	var plat *azuredouble.Platform
	rec := &recorder{allowed: func(c azuredouble.Claims, role string) bool {
		// A managed identity needs its role on the account; the user's
		// own rights are not the subject here.
		return c.AppID == "" || plat.HasRole(c.ObjectID, role, accountScope)
	}}
	blobURL := rec.proxy(t, ca, blobPort, armdeploy.RoleStorageBlobDataOwner)
	queueURL := rec.proxy(t, ca, queuePort, armdeploy.RoleStorageQueueDataContributor)

	plat, err = azuredouble.Start(azuredouble.Options{
		Instances: 1, Lease: 20 * time.Second, Output: hostLog,
		Env: []string{appsettings.HostCache + "=" + filepath.Join(tmp, "host-cache"), "SSL_CERT_FILE=" + ca.bundle},
		// The double polls the app's queue with the identity, over TLS.
		StorageClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plat.Close()
	// Handlers trust both the storage and the platform certificates.
	platPEM, err := os.ReadFile(plat.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca.bundle, append(slices.Clone(ca.pem), platPEM...), 0o644); err != nil {
		t.Fatal(err)
	}

	u := newUserModule(t, ctx)
	os.WriteFile(filepath.Join(u.dir, "cmd", "job", "main.go"), []byte(keylessMain), 0o644)
	userOID := "3f5c1e2a-user-4000-8000-0000000000aa"
	azLog := fakeAzCLI(t, tmp, userOID)
	for i, kv := range u.env {
		if strings.HasPrefix(kv, "PATH=") {
			u.env[i] = "PATH=" + filepath.Join(tmp, "fakeaz") + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
		}
	}
	// The user signs in with the Azure CLI (the only credential of the
	// chain tried) and has no IDENTITY_* of the platform.
	u.env = append(u.env, "SSL_CERT_FILE="+ca.bundle, "AZURE_TOKEN_CREDENTIALS=AzureCLICredential")

	id := fmt.Sprintf("%08x", mrand.Uint32())
	rt := "keyless-" + id
	bucket := "lithops-keyless-" + id
	cfgYAML := fmt.Sprintf(`lithops:
  backend: azure_functions
  storage: azure_storage
  data_cleaner: false
azure_storage:
  endpoint: %s/%s
  queue_endpoint: %s/%s
  storage_bucket: %s
azure_functions:
  runtime: %s
  subscription_id: %s
  resource_group: %s
  region: westeurope
  runtime_memory: 2048
  max_workers: 1
  worker_processes: 2
azure:
  resource_manager_endpoint: %s
`, blobURL, azblob.DevAccountName, queueURL, azblob.DevAccountName, bucket, rt, sub, rg, plat.URL())
	os.WriteFile(filepath.Join(u.dir, ".lithops_config"), []byte(cfgYAML), 0o600)

	var logs []string // every command's output
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := command(t, ctx, u.dir, u.env, name, args...)
		logs = append(logs, out)
		if err != nil {
			t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
		}
		return out
	}
	defer func() {
		if t.Failed() {
			t.Logf("handlers' output:\n%s", hostLog.String())
		}
	}()

	// Deploy: identity, roles, identity-based settings.
	run(u.cli, "runtime", "build", "-b", "azure_functions", "-f", "./cmd/job", rt)
	out := run(u.cli, "runtime", "deploy", "-b", "azure_functions", "-s", "azure_storage", rt)
	if !strings.Contains(out, "runtime "+rt+" deployed") || !strings.Contains(out, "managed identity") {
		t.Fatalf("deploy output lacks the keyless steps")
	}
	ids := plat.Identities()
	if len(ids) != 1 {
		t.Fatalf("identities %v, want one", ids)
	}
	var ident azuredouble.Identity
	for _, v := range ids {
		ident = v
	}
	for _, role := range armdeploy.StorageRoles {
		if !plat.HasRole(ident.PrincipalID, role, accountScope) {
			t.Errorf("identity lacks role %s on %s: %v", armdeploy.RoleNames[role], accountScope, plat.RoleAssignments())
		}
	}
	sites := plat.Sites()
	if len(sites) != 1 {
		t.Fatalf("sites %v", slices.Collect(mapsKeys(sites)))
	}
	var texts []named // everything scanned for key material
	for name, s := range sites {
		settings := plat.Settings(path.Base(name))
		if settings[appsettings.HostStorageClientID] != ident.ClientID || settings[appsettings.HostStorage] != "" {
			t.Errorf("site %s: settings %v: want identity-based storage with client id %s", name, settings, ident.ClientID)
		}
		for k, v := range settings {
			texts = append(texts, named{"app setting " + k, k + "=" + v})
		}
		raw, _ := json.Marshal(s)
		texts = append(texts, named{"site " + name, string(raw)})
	}

	// The client: submit, poll, completion queue, poison watcher, and a
	// worker's own storage requests.
	job := filepath.Join(filepath.Dir(u.cli), "job")
	run("go", "build", "-o", job, "./cmd/job")
	out = run(job, rt)
	for _, want := range []string{"results: [2 4 6 8 10]", "worker storage: written by a worker", "nap: rested"} {
		if !strings.Contains(out, want) {
			t.Errorf("client output lacks %q", want)
		}
	}

	// The CLI's storage, jobs, logs, doctor and clean.
	file := filepath.Join(tmp, "hello.txt")
	os.WriteFile(file, []byte("hello keyless\n"), 0o644)
	run(u.cli, "storage", "put", file, bucket)
	if out := run(u.cli, "storage", "list", bucket); !strings.Contains(out, "hello.txt") || !strings.Contains(out, "keyless/worker-object") {
		t.Errorf("storage list lacks the uploaded and the worker's objects")
	}
	if out := run(u.cli, "storage", "get", "-o", "-", bucket, "hello.txt"); !strings.Contains(out, "hello keyless") {
		t.Errorf("storage get: wrong content")
	}
	run(u.cli, "storage", "delete", bucket, "hello.txt")
	jobKey := ""
	for _, line := range strings.Split(run(u.cli, "jobs", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && slices.Contains(f, "double") {
			jobKey = f[0] + "/" + f[1]
		}
	}
	if jobKey == "" {
		t.Fatal("jobs list shows no job of function double")
	}
	run(u.cli, "logs", jobKey)
	run(u.cli, "doctor")
	run(u.cli, "clean")
	if out := run(u.cli, "jobs", "list"); slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return slices.Contains(strings.Fields(l), "double") }) {
		t.Errorf("clean left the job")
	}

	// Who asked for tokens: the runtime (its identity) at the
	// managed-identity endpoint, the user through the Azure CLI.
	treqs := plat.TokenRequests()
	if len(treqs) == 0 {
		t.Error("the runtime asked the managed-identity endpoint for no token")
	}
	for _, r := range treqs {
		if r.ClientID != ident.ClientID || !strings.HasPrefix(r.Resource, "https://storage.azure.com") {
			t.Errorf("managed-identity token request %+v: want client id %s for storage", r, ident.ClientID)
		}
	}
	if azl, _ := os.ReadFile(azLog); !strings.Contains(string(azl), "https://storage.azure.com") {
		t.Errorf("the client never signed in for storage with the Azure CLI: %q", azl)
	}

	// Each path's requests, by whom, and nothing refused.
	exchanges := rec.all()
	saw := func(what string, ok func(e exchange) bool) {
		t.Helper()
		if !slices.ContainsFunc(exchanges, ok) {
			t.Errorf("no storage request of %s", what)
		}
	}
	user := func(e exchange) bool { return e.claims.ObjectID == userOID }
	runtimeID := func(e exchange) bool { return e.claims.ObjectID == ident.PrincipalID }
	ok := func(e exchange) bool { return e.status < 400 }
	saw("the client's submit (trigger queue)", func(e exchange) bool {
		return user(e) && ok(e) && e.method == http.MethodPost && strings.HasSuffix(e.path, "-in/messages")
	})
	saw("the client's poll (status records)", func(e exchange) bool {
		return user(e) && ok(e) && e.method == http.MethodGet && strings.Contains(e.path, "/"+bucket+"/")
	})
	saw("the runtime's completion push", func(e exchange) bool {
		return runtimeID(e) && ok(e) && e.method == http.MethodPost && strings.Contains(e.path, "/lithops-done-")
	})
	saw("the client's completion queue", func(e exchange) bool {
		return user(e) && ok(e) && e.method == http.MethodGet && strings.Contains(e.path, "/lithops-done-") && strings.HasSuffix(e.path, "/messages")
	})
	saw("the client's poison watcher", func(e exchange) bool {
		return user(e) && e.status != 401 && e.status != 403 && strings.Contains(e.path, "-poison")
	})
	saw("the runtime's records", func(e exchange) bool {
		return runtimeID(e) && ok(e) && e.method == http.MethodPut && strings.Contains(e.path, "/"+bucket+"/")
	})
	saw("the runtime's trigger polling", func(e exchange) bool {
		return runtimeID(e) && ok(e) && e.method == http.MethodGet && strings.HasSuffix(e.path, "-in/messages")
	})
	for _, e := range exchanges {
		if e.status == 401 || e.status == 403 {
			t.Errorf("refused: %s %s by %s: %d %s", e.method, e.path, e.claims.ObjectID, e.status, snippet(e.response))
		}
		if e.auth != "" {
			t.Errorf("%s %s: %s", e.method, e.path, e.auth)
		}
		texts = append(texts, named{e.method + " " + e.path + " (request)", e.path + "?" + e.query + "\n" + string(decoded(e.path, e.body))})
		texts = append(texts, named{e.method + " " + e.path + " (response)", string(decoded(e.path, e.response))})
	}
	for i, l := range logs {
		texts = append(texts, named{fmt.Sprintf("output of command %d", i), l})
	}
	texts = append(texts, named{"handlers' output", hostLog.String()})
	if len(exchanges) < 20 {
		t.Fatalf("only %d storage requests recorded", len(exchanges))
	}
	for _, tx := range texts {
		for _, k := range keyMaterial {
			if loc := k.FindStringIndex(tx.text); loc != nil {
				t.Errorf("%s holds key material %q: …%s…", tx.name, k, tx.text[max(0, loc[0]-80):min(len(tx.text), loc[1]+20)])
			}
		}
	}
	if errs := plat.Errors(); len(errs) > 0 {
		t.Errorf("platform errors: %v", errs)
	}
	t.Logf("%d storage requests, %d managed-identity token requests, all keyless", len(exchanges), len(treqs))
}

// named is a text to scan and where it came from.
type named struct{ name, text string }

// programPath matches the blobs that hold code (uploaded user programs):
// the azblob driver is linked into every program, and with it Azurite's
// public development key as a constant, which is not key material of the
// run.
var programPath = regexp.MustCompile(`/lithops\.runtimes/bin/`)

// decoded returns what a body says: gunzipped when gzip (log records),
// with the base64 text of queue messages decoded beside it; nothing for
// program blobs.
func decoded(path string, body []byte) []byte {
	if programPath.MatchString(path) {
		return nil
	}
	if len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if b, err := io.ReadAll(zr); err == nil {
				return b
			}
		}
	}
	out := slices.Clone(body)
	// Queue messages travel as <MessageText>base64</MessageText>.
	for _, m := range regexp.MustCompile(`<MessageText>([^<]*)</MessageText>`).FindAllSubmatch(body, -1) {
		var s string
		if xml.Unmarshal([]byte("<a>"+string(m[1])+"</a>"), &s) == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				out = append(append(out, '\n'), b...)
			}
		}
	}
	return out
}

func snippet(b []byte) string { return string(b[:min(len(b), 300)]) }

// exchange is one storage request and its answer.
type exchange struct {
	method, path, query string
	claims              azuredouble.Claims
	auth                string // what was wrong with the authorization, or ""
	status              int
	body, response      []byte
}

// recorder is a TLS proxy in front of each Azurite service that records
// every exchange and refuses what Azure would: no bearer token, or a
// managed identity without the service's data role.
type recorder struct {
	allowed func(c azuredouble.Claims, role string) bool
	mu      sync.Mutex
	log     []exchange
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// proxy starts a proxy to the Azurite service on port whose requests need
// role, and returns its URL.
func (r *recorder) proxy(t *testing.T, ca *testCert, port int, role string) string {
	t.Helper()
	upstream := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		e := exchange{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery, body: body}
		defer func() {
			r.mu.Lock()
			r.log = append(r.log, e)
			r.mu.Unlock()
		}()
		refuse := func(code int, errCode, why string) {
			e.status, e.response = code, []byte(why)
			w.Header().Set("x-ms-error-code", errCode)
			w.WriteHeader(code)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, errCode, why)
		}
		tok, isBearer := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !isBearer {
			e.auth = "no bearer token: " + strings.SplitN(req.Header.Get("Authorization"), " ", 2)[0]
			refuse(http.StatusForbidden, "NoAuthenticationInformation", e.auth)
			return
		}
		c, err := azuredouble.ParseToken(tok)
		if err != nil {
			e.auth = err.Error()
			refuse(http.StatusUnauthorized, "InvalidAuthenticationInfo", e.auth)
			return
		}
		e.claims = c
		if !r.allowed(c, role) {
			refuse(http.StatusForbidden, "AuthorizationPermissionMismatch", "This request is not authorized to perform this operation using this permission.")
			return
		}
		out, err := http.NewRequestWithContext(req.Context(), req.Method, fmt.Sprintf("https://127.0.0.1:%d%s", port, req.URL.RequestURI()), bytes.NewReader(body))
		if err != nil {
			refuse(http.StatusBadGateway, "Proxy", err.Error())
			return
		}
		out.Header = req.Header.Clone()
		out.ContentLength = int64(len(body))
		resp, err := upstream.Do(out)
		if err != nil {
			refuse(http.StatusBadGateway, "Proxy", err.Error())
			return
		}
		defer resp.Body.Close()
		e.response, _ = io.ReadAll(resp.Body)
		e.status = resp.StatusCode
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(e.response)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// testCert is a self-signed certificate for 127.0.0.1 (its own CA).
type testCert struct {
	certFile, keyFile string
	bundle            string // PEM file the processes trust (SSL_CERT_FILE)
	pem               []byte
	pool              *x509.CertPool
	pair              tls.Certificate
}

func newTestCert(t *testing.T, dir string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(mrand.Int64()),
		Subject:      pkix.Name{CommonName: "lithops keyless test"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), bundle: filepath.Join(dir, "trust.pem"),
		pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: x509.NewCertPool()}
	kpem := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(c.certFile, c.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, kpem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.bundle, c.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	c.pool.AppendCertsFromPEM(c.pem)
	if c.pair, err = tls.X509KeyPair(c.pem, kpem); err != nil {
		t.Fatal(err)
	}
	return c
}

// startOAuthAzurite starts an Azurite of the test's own on free loopback
// ports over HTTPS with --oauth basic, its account key a random one that
// nothing else is given (so only bearer tokens work), waits (at most a
// minute) until it accepts TLS connections, and stops it when the test
// ends. It returns the blob and queue ports.
func startOAuthAzurite(t *testing.T, ctx context.Context, bin, dir string, ca *testCert) (int, int) {
	t.Helper()
	var ports [3]int
	var ls []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	secret := make([]byte, 64)
	rand.Read(secret)
	logPath := filepath.Join(dir, "azurite.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(ports[0]),
		"--queueHost", "127.0.0.1", "--queuePort", fmt.Sprint(ports[1]),
		"--tableHost", "127.0.0.1", "--tablePort", fmt.Sprint(ports[2]),
		"--oauth", "basic", "--cert", ca.certFile, "--key", ca.keyFile,
		"--skipApiVersionCheck", "--inMemoryPersistence", "--loose", "--disableTelemetry", "--silent")
	cmd.Env = append(os.Environ(), "AZURITE_ACCOUNTS="+azblob.DevAccountName+":"+base64.StdEncoding.EncodeToString(secret))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that stopping it reaches node and nothing
	// else; killed with the test binary should that die first.
	cmd.SysProcAttr = procgroup.Attr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Azurite: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		procgroup.Stop(cmd)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			procgroup.Kill(cmd)
			<-exited
		}
	})
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: ca.pool}}
	for _, p := range ports[:2] {
		for {
			c, err := dialer.DialContext(wctx, "tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(logPath)
				t.Fatalf("Azurite exited during start-up:\n%s", log)
			case <-wctx.Done():
				log, _ := os.ReadFile(logPath)
				t.Fatalf("Azurite does not accept TLS on port %d within a minute (%v):\n%s", p, err, log)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return ports[0], ports[1]
}

// fakeAzCLI writes an `az` (dir/fakeaz/az) that answers
// `az account get-access-token --resource R` as the Azure CLI does, with a
// token of user objectID for R, and logs each resource asked; it returns
// the log's path.
func fakeAzCLI(t *testing.T, dir, objectID string) string {
	t.Helper()
	bin := filepath.Join(dir, "fakeaz")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "az.log")
	exp := time.Now().Add(time.Hour).Unix()
	// Tokens are minted here, one per audience the run uses: storage and,
	// for the rest (Resource Manager, App Service), a generic one.
	script := fmt.Sprintf(`#!/bin/sh
res=""
while [ $# -gt 0 ]; do
	case "$1" in --resource) res="$2"; shift ;; esac
	shift
done
echo "$res" >> %q
case "$res" in
https://storage.azure.com*) tok=%q ;;
*) tok=%q ;;
esac
printf '{"accessToken":"%%s","expires_on":%d,"tokenType":"Bearer","tenant":"%s"}\n' "$tok"
`, logPath, azuredouble.AccessToken("https://storage.azure.com", objectID, ""),
		azuredouble.AccessToken("https://management.azure.com", objectID, ""), exp, azuredouble.Tenant)
	if err := os.WriteFile(filepath.Join(bin, "az"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return logPath
}

// TestKeyMaterialPatterns: the scan finds SAS signatures in every form a
// URL takes, and not the letters of "sig=" inside base64.
func TestKeyMaterialPatterns(t *testing.T) {
	found := func(s string) bool {
		for _, k := range keyMaterial {
			if k.MatchString(s) {
				return true
			}
		}
		return false
	}
	for _, s := range []string{
		"https://a.blob.core.windows.net/c/b?sv=2023-01-03&se=2026&sig=abc%2Bdef",
		"https://a.blob.core.windows.net/c/b?sig=abc",
		"<Url>https://a/c?sv=1&amp;sig=abc</Url>",
		"next=https%3A%2F%2Fa%2Fc%3Fsv%3D1%26sig%3Dabc",
		"BlobEndpoint=https://a/;SharedAccessSignature=sv=1&sig=x",
		"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + azblob.DevAccountKey,
	} {
		if !found(s) {
			t.Errorf("not found in %q", s)
		}
	}
	for _, s := range []string{
		"<Content-MD5>op5k7GU25I84rTWXrNDsig==</Content-MD5>",
		`{"signature":"x","design=":1}`,
	} {
		if found(s) {
			t.Errorf("found in %q", s)
		}
	}
}
