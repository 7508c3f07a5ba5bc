package jobplot

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lithops-go/lithops/internal/jobstats"
	"github.com/lithops-go/lithops/internal/protocol"
)

var t0 = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

// report returns a job of n calls, every fifth failed, the last two pending.
func report(n int) *jobstats.Report {
	job := &protocol.Job{ExecutorID: "ex-0", JobID: "M000", Function: "square", Calls: n, Created: t0}
	calls := make([]jobstats.Call, n)
	for i := range calls {
		c := jobstats.Call{ID: protocol.CallID(i), Index: i, State: jobstats.StateSuccess, Attempts: 1, Worker: "w"}
		if i%5 == 4 {
			c.State = jobstats.StateError
			c.Error = &protocol.ErrorRecord{Kind: protocol.KindUser, Message: "boom"}
		}
		if i >= n-2 && n > 4 {
			c = jobstats.Call{ID: c.ID, Index: i, State: jobstats.StatePending}
		} else {
			start := t0.Add(time.Duration(100+37*(n-i)) * time.Millisecond) // later calls start first
			c.Start, c.End = start, start.Add(time.Duration(200+50*(i%7))*time.Millisecond)
		}
		calls[i] = c
	}
	return &jobstats.Report{Job: job, Summary: jobstats.Summarize(job, calls), Calls: calls}
}

// inspect decodes a PNG and counts its distinct colours and the pixels close
// to each of want.
func inspect(t *testing.T, path string, want ...color.RGBA) (image.Rectangle, int, []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	colors := map[color.RGBA]bool{}
	hits := make([]int, len(want))
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colors[c] = true
			for i, w := range want {
				if near(c, w) {
					hits[i]++
				}
			}
		}
	}
	return b, len(colors), hits
}

func near(a, b color.RGBA) bool {
	d := func(x, y uint8) float64 { return math.Abs(float64(x) - float64(y)) }
	return d(a.R, b.R)+d(a.G, b.G)+d(a.B, b.B) < 30
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		r          *jobstats.Report
		wantColors []color.RGBA // each must cover many pixels
	}{
		{"50 calls", report(50), []color.RGBA{ColorSuccess, ColorError, ColorWait}},
		{"one call", report(1), []color.RGBA{ColorSuccess}},
		{"no finished call", &jobstats.Report{Summary: jobstats.Summary{Executor: "ex-0", Job: "A001", Function: "f", Calls: 2, Pending: 2}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "plots")
			paths, err := Write(dir, tt.r)
			if err != nil {
				t.Fatal(err)
			}
			key := tt.r.Summary.Executor + "_" + tt.r.Summary.Job
			want := []string{key + "_timeline.png", key + "_timeline.svg", key + "_histogram.png", key + "_histogram.svg"}
			if len(paths) != len(want) {
				t.Fatalf("paths %v", paths)
			}
			for i, p := range paths {
				if p != filepath.Join(dir, want[i]) {
					t.Errorf("path %d = %s, want %s", i, p, want[i])
				}
				if strings.HasSuffix(p, ".svg") {
					raw, err := os.ReadFile(p)
					if err != nil || !strings.Contains(string(raw), "<svg") || len(raw) < 1000 {
						t.Errorf("%s: not an SVG (%d bytes, %v)", p, len(raw), err)
					}
					continue
				}
				bounds, ncolors, hits := inspect(t, p, tt.wantColors...)
				if bounds.Dx() != 960 || bounds.Dy() != 576 {
					t.Errorf("%s is %v, want 960×576", p, bounds)
				}
				// Not blank: text, axes and anti-aliasing make many colours.
				if ncolors < 8 {
					t.Errorf("%s has %d distinct colours", p, ncolors)
				}
				for i, h := range hits {
					if strings.Contains(p, "histogram") && tt.wantColors[i] == ColorWait {
						continue
					}
					if h < 50 {
						t.Errorf("%s: %d pixels of colour %v", p, h, tt.wantColors[i])
					}
				}
			}
		})
	}
	if _, err := Write("/dev/null/plots", report(3)); err == nil || !strings.Contains(err.Error(), "jobplot: create /dev/null/plots") {
		t.Errorf("unwritable dir: %v", err)
	}
}

func TestBins(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name      string
		values    []float64
		failed    []bool
		n         int
		wantAll   []float64
		wantErrs  []float64
		wantWidth float64
	}{
		{"none", nil, nil, 0, nil, nil, 0},
		{"only bad values", []float64{math.NaN(), inf}, nil, 0, nil, nil, 0},
		{"equal values", []float64{2, 2, 2}, []bool{false, true, false}, 0, []float64{3}, []float64{1}, 0.2},
		{"spread", []float64{0, 1, 2, 3, 4}, []bool{true, false, false, false, true}, 4, []float64{1, 1, 1, 2}, []float64{1, 0, 0, 1}, 1},
		{"auto count", []float64{0, 10, math.NaN()}, nil, 0, []float64{1, 0, 0, 0, 1}, []float64{0, 0, 0, 0, 0}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, errs, w := Bins(tt.values, tt.failed, tt.n)
			if len(all) != len(tt.wantAll) || len(errs) != len(tt.wantErrs) || math.Abs(w-tt.wantWidth) > 1e-9 {
				t.Fatalf("bins %v / %v width %v", all, errs, w)
			}
			for i := range all {
				if all[i].Weight != tt.wantAll[i] || errs[i].Weight != tt.wantErrs[i] {
					t.Errorf("bin %d: %v / %v, want %v / %v", i, all[i].Weight, errs[i].Weight, tt.wantAll[i], tt.wantErrs[i])
				}
			}
		})
	}
}
