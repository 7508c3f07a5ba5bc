package azurefunctions

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lithops-go/lithops/config"
	"github.com/lithops-go/lithops/internal/protocol"
)

func TestAutoChunk(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		n, workers, instances int
		callTimeout           time.Duration
		runtimeTimeoutS, want int
	}{
		{"small map: one round of the workers", 10, 2, 8, 10 * time.Second, 600, 2},
		{"up to chunkSpread messages per instance: one round", 32, 1, 8, 10 * time.Second, 600, 1},
		{"1,000 calls on 8 instances: 4 messages each", 1000, 1, 8, 10 * time.Second, 600, 32},
		{"workers multiply", 1000, 4, 8, 10 * time.Second, 600, 32},
		{"rounds bounded by what fits the function timeout", 10000, 1, 8, 100 * time.Second, 600, 5},
		{"a call timeout at the cap: one round", 10000, 2, 8, 595 * time.Second, 600, 2},
		{"no call timeout: one round", 10000, 2, 8, 0, 600, 2},
		{"no runtime timeout: one round", 10000, 2, 8, time.Second, 0, 2},
		{"at most maxAutoChunk", 1000000, 1, 1, time.Millisecond, 600, maxAutoChunk},
		{"no workers or instances known", 1000, 0, 0, time.Second, 600, 250},
	} {
		if got := AutoChunk(tc.n, tc.workers, tc.instances, tc.callTimeout, tc.runtimeTimeoutS); got != tc.want {
			t.Errorf("%s: AutoChunk(%d, %d, %d, %v, %d) = %d, want %d", tc.name, tc.n, tc.workers, tc.instances, tc.callTimeout, tc.runtimeTimeoutS, got, tc.want)
		}
	}
}

// TestChunkSizeChoice: the job's chunksize (WithChunkSize) wins over
// lithops.chunksize, which wins over AutoChunk.
func TestChunkSizeChoice(t *testing.T) {
	b := &Backend{cfg: config.Default()}
	b.cfg.AzureFunctions.MaxWorkers = 8
	meta := protocol.RuntimeMeta{Workers: 1, TimeoutS: 600}
	job := &protocol.Job{Timeout: 10}
	if got := b.chunkSize(job, meta, 1000); got != 32 {
		t.Errorf("automatic: %d calls per message, want 32", got)
	}
	b.cfg.Lithops.Chunksize = 3
	if got := b.chunkSize(job, meta, 1000); got != 3 {
		t.Errorf("lithops.chunksize 3: %d calls per message", got)
	}
	job.Chunksize = 7
	if got := b.chunkSize(job, meta, 1000); got != 7 {
		t.Errorf("WithChunkSize(7): %d calls per message", got)
	}
}

func TestDecodeCompletion(t *testing.T) {
	st := func(call string) string {
		b, _ := json.Marshal(protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "M000", CallID: call,
			State: protocol.StateSuccess, HasResult: true})
		return string(b)
	}
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"a batch", "[" + st("00000") + "," + st("00001") + "]", []string{"00000", "00001"}},
		{"one status", st("00002"), []string{"00002"}},
		{"invalid members dropped", "[" + st("00003") + `,{"call_id":"x"},null]`, []string{"00003"}},
		{"not JSON", "nonsense", nil},
	} {
		got := decodeCompletion(tc.text)
		var ids []string
		for _, s := range got {
			ids = append(ids, s.CallID)
		}
		if len(ids) != len(tc.want) || (len(ids) > 0 && ids[0] != tc.want[0]) || (len(ids) > 1 && ids[1] != tc.want[1]) {
			t.Errorf("%s: calls %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func TestBlockSize(t *testing.T) {
	for _, tc := range []struct{ chunk, want int }{
		{0, 0}, {1, 0}, {2, 2}, {16, 16}, {17, 0}, {18, 9}, {20, 10}, {32, 16}, {48, 16}, {64, 16}, {100, 10}, {128, 16},
	} {
		if got := BlockSize(tc.chunk); got != tc.want {
			t.Errorf("BlockSize(%d) = %d, want %d", tc.chunk, got, tc.want)
		}
		if got := BlockSize(tc.chunk); got > 0 && tc.chunk%got != 0 {
			t.Errorf("BlockSize(%d) = %d does not divide it", tc.chunk, got)
		}
	}
}

// The completion queue is read often while results are expected (calls
// invoked or completions heard lately), and once a second otherwise.
func TestPollCadence(t *testing.T) {
	for _, tc := range []struct {
		prev, sinceActive, want time.Duration
	}{
		{0, 0, pollMin},
		{pollMin, time.Second, pollBusy},
		{pollBusy, busyFor - time.Millisecond, pollBusy},
		{pollBusy, busyFor, 2 * pollBusy},
		{pollMin, time.Hour, pollBusy},
		{400 * time.Millisecond, time.Hour, 800 * time.Millisecond},
		{800 * time.Millisecond, time.Hour, pollIdle},
		{pollIdle, time.Hour, pollIdle},
		{pollIdle, 0, pollBusy}, // calls invoked after a long idle: often again
	} {
		if got := pollCadence(tc.prev, tc.sinceActive); got != tc.want {
			t.Errorf("pollCadence(%v, %v) = %v, want %v", tc.prev, tc.sinceActive, got, tc.want)
		}
	}
}
