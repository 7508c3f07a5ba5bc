package procpool

import (
	"strings"
	"testing"

	"github.com/lithops-go/lithops/internal/protocol"
)

// TestCheckReply: a worker's reply that is not a valid final status of the
// call it was given is refused with a reason, never used (a nil error
// record once crashed the client).
func TestCheckReply(t *testing.T) {
	inv := protocol.Invocation{ExecutorID: "e", JobID: "j", Calls: []protocol.Call{{ID: "00001"}}}
	ok := func() protocol.Status {
		return protocol.Status{Version: protocol.Version, ExecutorID: "e", JobID: "j", CallID: "00001", State: protocol.StateSuccess, HasResult: true}
	}
	tests := []struct {
		name string
		edit func(*protocol.Status)
		want string
	}{
		{"valid", func(*protocol.Status) {}, ""},
		{"error without record", func(s *protocol.Status) { s.State, s.HasResult = protocol.StateError, false }, "no error record"},
		{"still running", func(s *protocol.Status) { s.State = protocol.StateRunning }, "still running"},
		{"other call", func(s *protocol.Status) { s.CallID = "00002" }, "not e/j/00001"},
		{"other executor", func(s *protocol.Status) { s.ExecutorID = "x" }, "not e/j/00001"},
		{"unknown state", func(s *protocol.Status) { s.State = "done" }, "unknown state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := ok()
			tc.edit(&st)
			err := checkReply(&st, inv)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
