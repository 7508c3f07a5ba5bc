package plot_test

import (
	"context"
	"errors"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops"
	"github.com/lithops-go/lithops/plot"
)

var (
	misbehave = lithops.Func("plot_misbehave", func(ctx context.Context, mode string) (string, error) {
		switch mode {
		case "error":
			return "", errors.New("boom: user error")
		case "panic":
			var m map[string]int
			m["x"] = 1 // nil map write panics
		}
		return mode, nil
	})
	helloWorld = lithops.Func("plot_hello", func(ctx context.Context, _ string) (string, error) { return "hello", nil })
)

func TestMain(m *testing.M) {
	lithops.Init()
	os.Exit(m.Run())
}

// newExecutor runs calls in this process, on in-memory storage.
func newExecutor(t *testing.T) *lithops.Executor {
	t.Helper()
	e, err := lithops.NewExecutor(context.Background(), lithops.InProcess())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestPlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := newExecutor(t)
	inputs := make([]string, 12)
	for i := range inputs {
		inputs[i] = "ok"
	}
	inputs[3], inputs[9] = "error", "panic"
	fs, err := lithops.Map(ctx, e, misbehave, inputs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lithops.Wait(ctx, fs); err != nil {
		t.Fatal(err)
	}
	f, err := lithops.CallAsync(ctx, e, helloWorld, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctx); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "plots")
	paths, err := plot.Jobs(ctx, e, dir) // every job: the map and the call
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 8 {
		t.Fatalf("paths: %v", paths)
	}
	want := filepath.Join(dir, e.ID()+"_"+fs.At(0).JobID()+"_timeline.png")
	if paths[0] != want {
		t.Fatalf("first path %s, want %s", paths[0], want)
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, ".png") {
			continue
		}
		file, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(file)
		file.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 576 {
			t.Fatalf("%s is %v", p, b)
		}
		// Not blank: many colours, and many pixels that are not background.
		colors := map[color.RGBA]bool{}
		ink := 0
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				colors[c] = true
				if c != (color.RGBA{255, 255, 255, 255}) {
					ink++
				}
			}
		}
		if len(colors) < 8 || ink < 5000 {
			t.Errorf("%s looks blank: %d colours, %d non-background pixels", p, len(colors), ink)
		}
	}

	// One job by key, and errors.
	paths, err = plot.Jobs(ctx, e, dir, e.ID()+"/"+f.JobID())
	if err != nil || len(paths) != 4 {
		t.Fatalf("one job: %v, %v", paths, err)
	}
	if _, err := plot.Jobs(ctx, e, dir, "M999"); err == nil || !strings.Contains(err.Error(), "no such job") {
		t.Errorf("missing job: %v", err)
	}
	if _, err := plot.Jobs(ctx, e, ""); err == nil {
		t.Error("empty dir accepted")
	}
	if _, err := plot.Jobs(ctx, newExecutor(t), dir); err == nil || !strings.Contains(err.Error(), "no jobs to plot") {
		t.Errorf("executor without jobs: %v", err)
	}
}
