package lithops_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/lithops-go/lithops"
)

func TestWaitProgressBar(t *testing.T) {
	ctx := ctxT(t)
	e := newExecutor(t)
	inputs := make([]string, 20)
	for i := range inputs {
		inputs[i] = "ok"
	}
	inputs[7] = "error"
	tests := []struct {
		name      string
		opts      []lithops.WaitOption
		wantFinal string // the final line starts with this
	}{
		{"all", nil, "lithops: 20/20 done (1 failed), 0 running, 0 pending | "},
		{"all after any", []lithops.WaitOption{lithops.AnyCompleted, lithops.AllCompleted}, "lithops: 20/20 done (1 failed), 0 running, 0 pending | "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := lithops.Map(ctx, e, misbehave, inputs)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var calls int
			opts := append([]lithops.WaitOption{lithops.WaitProgress(func(lithops.Progress) { calls++ }), lithops.WaitProgressBar(&buf)}, tt.opts...)
			p, err := lithops.Wait(ctx, fs, opts...)
			if err != nil || p.Done != 20 {
				t.Fatalf("Wait: %+v, %v", p, err)
			}
			out := buf.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if !strings.HasSuffix(out, "\n") || !strings.HasPrefix(lines[len(lines)-1], tt.wantFinal) {
				t.Fatalf("final line: %q", out)
			}
			// A first line, at most one per tenth (or two seconds), a final line.
			if len(lines) > 13 || strings.Contains(out, "\r") {
				t.Fatalf("%d plain lines (want ≤ 13, no carriage return):\n%s", len(lines), out)
			}
			if calls == 0 {
				t.Fatal("the WaitProgress function given before WaitProgressBar was not called")
			}
		})
	}
}

func TestWaitProgressBarAnyCompleted(t *testing.T) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel() // stops the sleeping call
	e := newExecutor(t)
	fs, err := lithops.Map(ctx, e, misbehave, []string{"ok", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	p, err := lithops.Wait(ctx, fs, lithops.AnyCompleted, lithops.WaitProgressBar(&buf))
	if err != nil || p.Done != 1 {
		t.Fatalf("Wait: %+v, %v", p, err)
	}
	// Wait returned on its condition, so the final line is written and ended.
	if out := buf.String(); !strings.HasSuffix(out, "\n") || !strings.Contains(out, "1/2 done, 1 running, 0 pending") {
		t.Fatalf("output: %q", out)
	}
}
