package jobstats

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats that Write knows.
var Formats = []string{"table", "csv", "json"}

// CheckFormat returns an error unless Write knows format.
func CheckFormat(format string) error {
	switch strings.ToLower(format) {
	case "", "table", "csv", "json":
		return nil
	}
	return fmt.Errorf("jobstats: unknown format %q (known: %s)", format, strings.Join(Formats, ", "))
}

// Write renders r in format ("table", "csv" or "json"; "" means table).
func Write(w io.Writer, r *Report, format string) error {
	switch strings.ToLower(format) {
	case "", "table":
		return WriteTable(w, r)
	case "csv":
		return WriteCSV(w, r)
	case "json":
		return WriteJSON(w, r)
	}
	return CheckFormat(format)
}

// Dur formats d for people: "0s", "850µs", "15ms", "1.234s", "2m3.4s".
func Dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// Bytes formats n as "512 B", "1.5 KiB", "10.2 MiB"; "-" for 0.
func Bytes(n int64) string {
	const unit = 1024
	switch {
	case n <= 0:
		return "-"
	case n < unit:
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// stamp formats a time in UTC to the millisecond, "-" when unknown.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// offset formats t − base as "+1.234s", "-" when t is unknown.
func offset(t, base time.Time) string {
	if t.IsZero() || base.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%+.3fs", t.Sub(base).Seconds())
}

// errText is the one-line error of a call: "kind: first line of message".
func errText(c *Call) string {
	if c.Error == nil {
		return ""
	}
	msg, _, _ := strings.Cut(c.Error.Message, "\n")
	return string(c.Error.Kind) + ": " + msg
}

// WriteSummary writes the summary lines of s.
func WriteSummary(w io.Writer, s *Summary) error {
	fn := s.Function
	if fn == "" {
		fn = "?"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "job:       %s (function %s)\n", s.Key(), fn)
	fmt.Fprintf(&b, "created:   %s\n", stamp(s.Created))
	fmt.Fprintf(&b, "calls:     %d: %d done, %d failed, %d pending", s.Calls, s.Done, s.Failed, s.Pending)
	if s.Unreadable > 0 {
		fmt.Fprintf(&b, ", %d unreadable", s.Unreadable)
	}
	fmt.Fprintf(&b, "\nattempts:  %d (%s retried)\n", s.Attempts, plural(s.Retried, "call"))
	fmt.Fprintf(&b, "workers:   %d (%s)\n", s.Workers, plural(s.ColdStarts, "cold start"))
	fmt.Fprintf(&b, "duration:  min %s, median %s, p90 %s, max %s\n", Dur(s.MinDuration), Dur(s.MedianDuration), Dur(s.P90Duration), Dur(s.MaxDuration))
	fmt.Fprintf(&b, "wall time: %s (submission to last call end)\n", Dur(s.WallTime))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WriteTable writes the summary, a blank line, and one row per call.
func WriteTable(w io.Writer, r *Report) error {
	if err := WriteSummary(w, &r.Summary); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tSTATE\tATTEMPTS\tWORKER\tCOLD\tSTART\tDURATION\tEXEC\tPEAK RSS\tERROR")
	for i := range r.Calls {
		c := &r.Calls[i]
		cold, worker, dur, exec := "-", c.Worker, "-", "-"
		if c.State == StateSuccess || c.State == StateError {
			cold = "no"
			if c.ColdStart {
				cold = "yes"
			}
			dur, exec = Dur(c.Duration()), Dur(c.ExecTime())
		}
		if worker == "" {
			worker = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.State, c.Attempts, worker, cold,
			offset(c.Start, r.Summary.Created), dur, exec, Bytes(c.PeakRSS), errText(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeTrimmed(w, buf.String())
}

// writeTrimmed writes text without the padding tabwriter leaves at the end
// of lines whose last cell is empty.
func writeTrimmed(w io.Writer, text string) error {
	var b strings.Builder
	for line := range strings.Lines(text) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{"executor", "job", "function", "call_id", "state", "attempts", "worker", "cold_start",
	"start", "func_start", "func_end", "end", "duration_s", "exec_s", "result_size", "peak_rss", "error_kind", "error"}

// WriteCSV writes a header and one row per call; times are RFC 3339 in UTC
// (empty when unknown), durations in seconds, sizes in bytes.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 6, 64) }
	s := &r.Summary
	for i := range r.Calls {
		c := &r.Calls[i]
		kind, msg := "", ""
		if c.Error != nil {
			kind, msg = string(c.Error.Kind), c.Error.Message
		}
		row := []string{s.Executor, s.Job, s.Function, c.ID, c.State, strconv.Itoa(c.Attempts), c.Worker, strconv.FormatBool(c.ColdStart),
			ts(c.Start), ts(c.FuncStart), ts(c.FuncEnd), ts(c.End), secs(c.Duration()), secs(c.ExecTime()),
			strconv.FormatInt(c.ResultSize, 10), strconv.FormatInt(c.PeakRSS, 10), kind, msg}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// JSONSummary is the JSON form of a Summary: durations in seconds.
type JSONSummary struct {
	Executor       string    `json:"executor"`
	Job            string    `json:"job"`
	Function       string    `json:"function"`
	Created        time.Time `json:"created,omitzero"`
	Calls          int       `json:"calls"`
	Done           int       `json:"done"`
	Failed         int       `json:"failed"`
	Pending        int       `json:"pending"`
	Unreadable     int       `json:"unreadable,omitempty"`
	Attempts       int       `json:"attempts"`
	Retried        int       `json:"retried"`
	ColdStarts     int       `json:"cold_starts"`
	Workers        int       `json:"workers"`
	MinDuration    float64   `json:"min_duration_s"`
	MedianDuration float64   `json:"median_duration_s"`
	P90Duration    float64   `json:"p90_duration_s"`
	MaxDuration    float64   `json:"max_duration_s"`
	FirstStart     time.Time `json:"first_start,omitzero"`
	LastEnd        time.Time `json:"last_end,omitzero"`
	WallTime       float64   `json:"wall_time_s"`
}

// JSONCall is the JSON form of a Call.
type JSONCall struct {
	CallID     string    `json:"call_id"`
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	Worker     string    `json:"worker,omitempty"`
	ColdStart  bool      `json:"cold_start"`
	Start      time.Time `json:"start,omitzero"`
	FuncStart  time.Time `json:"func_start,omitzero"`
	FuncEnd    time.Time `json:"func_end,omitzero"`
	End        time.Time `json:"end,omitzero"`
	Duration   float64   `json:"duration_s"`
	ExecTime   float64   `json:"exec_s"`
	ResultSize int64     `json:"result_size"`
	PeakRSS    int64     `json:"peak_rss"`
	ErrorKind  string    `json:"error_kind,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// JSONReport is the document WriteJSON writes.
type JSONReport struct {
	Summary JSONSummary `json:"summary"`
	Calls   []JSONCall  `json:"calls"`
}

// ToJSON converts s.
func (s *Summary) ToJSON() JSONSummary {
	return JSONSummary{
		Executor: s.Executor, Job: s.Job, Function: s.Function, Created: s.Created,
		Calls: s.Calls, Done: s.Done, Failed: s.Failed, Pending: s.Pending, Unreadable: s.Unreadable,
		Attempts: s.Attempts, Retried: s.Retried, ColdStarts: s.ColdStarts, Workers: s.Workers,
		MinDuration: s.MinDuration.Seconds(), MedianDuration: s.MedianDuration.Seconds(),
		P90Duration: s.P90Duration.Seconds(), MaxDuration: s.MaxDuration.Seconds(),
		FirstStart: s.FirstStart, LastEnd: s.LastEnd, WallTime: s.WallTime.Seconds(),
	}
}

// WriteJSON writes r as an indented JSONReport.
func WriteJSON(w io.Writer, r *Report) error {
	doc := JSONReport{Summary: r.Summary.ToJSON(), Calls: make([]JSONCall, len(r.Calls))}
	for i := range r.Calls {
		c := &r.Calls[i]
		jc := JSONCall{
			CallID: c.ID, State: c.State, Attempts: c.Attempts, Worker: c.Worker, ColdStart: c.ColdStart,
			Start: c.Start, FuncStart: c.FuncStart, FuncEnd: c.FuncEnd, End: c.End,
			Duration: c.Duration().Seconds(), ExecTime: c.ExecTime().Seconds(),
			ResultSize: c.ResultSize, PeakRSS: c.PeakRSS,
		}
		if c.Error != nil {
			jc.ErrorKind, jc.Error = string(c.Error.Kind), c.Error.Message
		}
		doc.Calls[i] = jc
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteList writes one row per job: executor, job, function, calls, done,
// failed, pending, created; and a total line.
func WriteList(w io.Writer, jobs []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTOR\tJOB\tFUNCTION\tCALLS\tDONE\tFAILED\tPENDING\tCREATED")
	for i := range jobs {
		s := &jobs[i]
		fn := s.Function
		if fn == "" {
			fn = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Executor, s.Job, fn, s.Calls, s.Done, s.Failed, s.Pending, stamp(s.Created))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "Total jobs: %d\n", len(jobs))
	return err
}
