package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// counter is a reverse proxy in front of Azurite's blob and queue
// endpoints that counts every request by operation, so that the benchmark
// prints what each call costs the storage account: the client's, the
// runtime hosts' and the host double's requests alike.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
	busy   map[string]time.Duration // request to response, by operation
	lns    []net.Listener
}

// startCounter listens on two loopback ports forwarding to blob and queue
// and returns the connection string that goes through them.
func startCounter(blob, queue, account, key string) (*counter, string, error) {
	c := &counter{counts: map[string]int{}, busy: map[string]time.Duration{}}
	var eps [2]string
	for i, target := range []string{blob, queue} {
		u, err := url.Parse(target)
		if err != nil {
			return nil, "", err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.close()
			return nil, "", err
		}
		c.lns = append(c.lns, ln)
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
		rp.ErrorLog = log.New(io.Discard, "", 0) // cancelled polls at shutdown
		kind := [2]string{"blob", "queue"}[i]
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			op := kind + " " + operation(kind, r)
			t0 := time.Now()
			rp.ServeHTTP(w, r)
			c.add(op, time.Since(t0))
		}))
		eps[i] = "http://" + ln.Addr().String() + "/" + account
	}
	conn := "DefaultEndpointsProtocol=http;AccountName=" + account + ";AccountKey=" + key +
		";BlobEndpoint=" + eps[0] + ";QueueEndpoint=" + eps[1] + ";"
	return c, conn, nil
}

// operation names a storage request by what it does.
func operation(kind string, r *http.Request) string {
	q := r.URL.Query()
	if kind == "queue" {
		msgs := strings.HasSuffix(r.URL.Path, "/messages")
		switch {
		case msgs && r.Method == http.MethodPost:
			return "enqueue"
		case msgs && r.Method == http.MethodGet && q.Get("peekonly") == "true":
			return "peek"
		case msgs && r.Method == http.MethodGet:
			return "dequeue"
		case strings.Contains(r.URL.Path, "/messages/") && r.Method == http.MethodDelete:
			return "delete message"
		case strings.Contains(r.URL.Path, "/messages/") && r.Method == http.MethodPut:
			return "update message"
		}
		return "other " + r.Method
	}
	switch {
	case q.Get("comp") == "list":
		return "list"
	case r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*":
		return "put if absent"
	case r.Method == http.MethodPut:
		return "put"
	case r.Method == http.MethodGet:
		return "get"
	case r.Method == http.MethodHead:
		return "head"
	case r.Method == http.MethodDelete:
		return "delete"
	}
	return "other " + r.Method
}

func (c *counter) add(op string, d time.Duration) {
	c.mu.Lock()
	c.counts[op]++
	c.busy[op] += d
	c.mu.Unlock()
}

// latencies returns the total request-to-response time by operation.
func (c *counter) latencies() map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]time.Duration, len(c.busy))
	for k, v := range c.busy {
		m[k] = v
	}
	return m
}

// window renders what happened between two snapshots: requests per second
// and the mean latency of each operation, busiest first.
func window(counts, counts0 map[string]int, lat, lat0 map[string]time.Duration, secs float64) string {
	d, _ := since(counts, counts0)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return int((lat[b] - lat0[b]) - (lat[a] - lat0[a])) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f/s %.1fms", k, float64(d[k])/secs, float64((lat[k]-lat0[k]).Microseconds())/1000/float64(d[k])))
	}
	return strings.Join(parts, ", ")
}

// snapshot returns the counts so far.
func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		m[k] = v
	}
	return m
}

// since returns the counts added after an earlier snapshot, and their sum.
func since(now, before map[string]int) (map[string]int, int) {
	d := map[string]int{}
	total := 0
	for k, v := range now {
		if n := v - before[k]; n > 0 {
			d[k] = n
			total += n
		}
	}
	return d, total
}

// perCall renders counts per call, largest first.
func perCall(d map[string]int, calls int) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return d[b] - d[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.3f", k, float64(d[k])/float64(calls)))
	}
	return strings.Join(parts, ", ")
}

func (c *counter) close() {
	for _, ln := range c.lns {
		ln.Close()
	}
}
