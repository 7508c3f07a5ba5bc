// Package jobplot draws the plots of a job that Lithops' plot() draws: a
// timeline of its calls and a histogram of their durations, as PNG and SVG,
// with gonum/plot (pure Go, fonts embedded).
//
// Invariants:
//   - The timeline has one row per call that recorded a start and an end,
//     rows sorted by start (then call id); each row is a grey segment from
//     submission to start (waiting) and a segment from start to end coloured
//     by the call's state. Time is in seconds since the job's submission.
//   - The histogram counts call durations (End − Start) in equal bins; the
//     failed calls' share of each bin is drawn over it in the error colour.
//   - A job with no finished call still gets both plots, empty, saying so.
//   - Files are named <executor>_<job>_timeline.{png,svg} and
//     <executor>_<job>_histogram.{png,svg}; the PNGs are Width × Height
//     inches at 96 dpi.
package jobplot

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/lithops-go/lithops/internal/jobstats"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Size of every plot.
const (
	Width  = 10 * vg.Inch
	Height = 6 * vg.Inch
)

// Colours of call states.
var (
	ColorSuccess = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	ColorError   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	ColorWait    = color.RGBA{R: 0xc8, G: 0xc8, B: 0xc8, A: 0xff}
)

// Formats are the file formats written, by extension.
var Formats = []string{"png", "svg"}

// segment is one drawn interval of a row.
type segment struct {
	row      float64
	from, to float64 // seconds since submission
	color    color.Color
	thick    float64 // share of the row height, 0..1
}

// segments is a plotter of horizontal segments, one row per call.
type segments struct {
	segs []segment
	rows int
}

// Plot implements plot.Plotter.
func (s *segments) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	rowH := float64(trY(1) - trY(0))
	for _, g := range s.segs {
		w := vg.Length(math.Min(math.Max(math.Abs(rowH)*g.thick, 0.6), 8))
		x0, x1, y := trX(g.from), trX(g.to), trY(g.row)
		if x1-x0 < 0.6 {
			x1 = x0 + 0.6 // a call too short to see is still a dot
		}
		sty := draw.LineStyle{Color: g.color, Width: w}
		c.StrokeLines(sty, c.ClipLinesXY([]vg.Point{{X: x0, Y: y}, {X: x1, Y: y}})...)
	}
}

// DataRange implements plot.DataRanger.
func (s *segments) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = 0, 0
	for _, g := range s.segs {
		xmin, xmax = math.Min(xmin, g.from), math.Max(xmax, g.to)
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	xmax += (xmax - xmin) * 0.02
	// Headroom above the last row keeps the legend off the data.
	return xmin, xmax, -1, float64(max(s.rows, 1)) * 1.15
}

// countTicks are the default ticks restricted to whole, non-negative
// values, labelled without decimals: call rows and call counts.
type countTicks struct{}

// Ticks implements plot.Ticker.
func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value < 0 || t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
		out = append(out, t)
	}
	return out
}

// swatch is a legend thumbnail: a filled box of one colour.
type swatch struct{ c color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(s.c, pts)
}

func stateColor(state string) color.Color {
	if state == jobstats.StateSuccess {
		return ColorSuccess
	}
	return ColorError
}

// finished returns the calls with a start and an end, sorted by start.
func finished(r *jobstats.Report) []*jobstats.Call {
	var out []*jobstats.Call
	for i := range r.Calls {
		c := &r.Calls[i]
		if (c.State == jobstats.StateSuccess || c.State == jobstats.StateError) && !c.Start.IsZero() && !c.End.IsZero() {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b *jobstats.Call) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func secondsSince(t, base time.Time) float64 {
	if base.IsZero() {
		return 0
	}
	return t.Sub(base).Seconds()
}

func title(r *jobstats.Report, what string) string {
	s := &r.Summary
	t := fmt.Sprintf("%s of %s (%s): %d calls, %d failed", what, s.Key(), s.Function, s.Calls, s.Failed)
	if s.Pending > 0 {
		t += fmt.Sprintf(", %d pending", s.Pending)
	}
	return t
}

// Timeline returns the timeline plot of r.
func Timeline(r *jobstats.Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = title(r, "Timeline")
	p.X.Label.Text = "seconds since submission"
	p.Y.Label.Text = "calls, by start"
	p.Y.Tick.Marker = countTicks{}
	calls := finished(r)
	base := r.Summary.Created
	if base.IsZero() && len(calls) > 0 {
		base = calls[0].Start
	}
	s := &segments{rows: len(calls)}
	for i, c := range calls {
		row := float64(i)
		s.segs = append(s.segs,
			segment{row: row, from: 0, to: math.Max(secondsSince(c.Start, base), 0), color: ColorWait, thick: 0.35},
			segment{row: row, from: secondsSince(c.Start, base), to: secondsSince(c.End, base), color: stateColor(c.State), thick: 0.8})
	}
	if len(calls) == 0 {
		p.Title.Text += " (no finished call)"
	}
	p.Add(plotter.NewGrid(), s)
	p.Title.Padding = vg.Points(6)
	p.Legend.Add("waiting", swatch{ColorWait})
	p.Legend.Add("success", swatch{ColorSuccess})
	p.Legend.Add("error", swatch{ColorError})
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(4)
	return p
}

// Bins returns n equal bins over values (seconds) with all, and failed,
// counts per bin; n is chosen from the count when ≤ 0. Values that are
// not finite are skipped.
func Bins(values []float64, failed []bool, n int) (all, errs []plotter.HistogramBin, width float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo > hi {
		return nil, nil, 0
	}
	if n <= 0 {
		n = min(max(int(math.Ceil(math.Sqrt(float64(len(values))))), 5), 50)
	}
	width = (hi - lo) / float64(n)
	if width <= 0 {
		// All equal: one bin around the value.
		n, width = 1, math.Max(hi*0.1, 0.001)
		lo -= width / 2
	}
	all = make([]plotter.HistogramBin, n)
	errs = make([]plotter.HistogramBin, n)
	for i := range all {
		all[i].Min, all[i].Max = lo+float64(i)*width, lo+float64(i+1)*width
		errs[i].Min, errs[i].Max = all[i].Min, all[i].Max
	}
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		b := min(max(int((v-lo)/width), 0), n-1)
		all[b].Weight++
		if i < len(failed) && failed[i] {
			errs[b].Weight++
		}
	}
	return all, errs, width
}

// Histogram returns the duration histogram plot of r.
func Histogram(r *jobstats.Report) *plot.Plot {
	p := plot.New()
	p.Title.Text = title(r, "Call durations")
	p.X.Label.Text = "duration on the worker (s)"
	p.Y.Label.Text = "calls"
	p.Y.Tick.Marker = countTicks{}
	calls := finished(r)
	values := make([]float64, len(calls))
	failed := make([]bool, len(calls))
	for i, c := range calls {
		values[i] = c.Duration().Seconds()
		failed[i] = c.State == jobstats.StateError
	}
	all, errs, width := Bins(values, failed, 0)
	if len(all) == 0 {
		p.Title.Text += " (no finished call)"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		return p
	}
	outline := draw.LineStyle{Color: color.Gray{Y: 0x40}, Width: vg.Points(0.5)}
	p.Add(plotter.NewGrid(),
		&plotter.Histogram{Bins: all, Width: width, FillColor: ColorSuccess, LineStyle: outline},
		&plotter.Histogram{Bins: errs, Width: width, FillColor: ColorError, LineStyle: outline})
	top := 0.0
	for _, b := range all {
		top = math.Max(top, b.Weight)
	}
	// Headroom above the highest bar keeps the legend off the data.
	p.Y.Min, p.Y.Max = 0, top*1.2
	p.Title.Padding = vg.Points(6)
	p.Legend.Add("success", swatch{ColorSuccess})
	p.Legend.Add("error", swatch{ColorError})
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(4)
	return p
}

// Write draws both plots of r into dir (created if missing) in every format
// and returns the paths written.
func Write(dir string, r *jobstats.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jobplot: create %s: %w", dir, err)
	}
	var paths []string
	for _, pl := range []struct {
		name string
		p    *plot.Plot
	}{{"timeline", Timeline(r)}, {"histogram", Histogram(r)}} {
		for _, ext := range Formats {
			path := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.%s", r.Summary.Executor, r.Summary.Job, pl.name, ext))
			if err := pl.p.Save(Width, Height, path); err != nil {
				return paths, fmt.Errorf("jobplot: write %s plot of %s to %s: %w", pl.name, r.Summary.Key(), path, err)
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}
