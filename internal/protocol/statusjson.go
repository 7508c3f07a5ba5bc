package protocol

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Encode returns s's record JSON, byte for byte what json.Marshal makes
// of it (TestStatusEncodeIsJSONMarshal; encoding/json as Go ships it: the
// jsonv2 experiment writes invalid UTF-8 as U+FFFD itself, not escaped,
// which reads back the same), without reflection: a worker
// writes one for every call, and encoding/json spent 12 µs of a warm
// call's 120 on it.
func (s *Status) Encode() ([]byte, error) {
	return s.appendJSON(make([]byte, 0, 512))
}

// Encode returns b's record JSON, byte for byte what json.Marshal makes of
// it, its statuses encoded as Status.Encode does.
func (b *StatusBatch) Encode() ([]byte, error) {
	out := append(make([]byte, 0, 64+320*len(b.Statuses)), `{"protocol":`...)
	out = strconv.AppendInt(out, int64(b.Version), 10)
	out = appendKeyInt(out, "block", int64(b.Block))
	if b.Fence {
		out = append(out, `,"fence":true`...)
	}
	out = append(out, `,"statuses":`...)
	if b.Statuses == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '[')
		for i := range b.Statuses {
			if i > 0 {
				out = append(out, ',')
			}
			var err error
			if out, err = b.Statuses[i].appendJSON(out); err != nil {
				return nil, err
			}
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

func (s *Status) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"protocol":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = appendKeyString(b, "executor_id", s.ExecutorID)
	b = appendKeyString(b, "job_id", s.JobID)
	b = appendKeyString(b, "call_id", s.CallID)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(s.Attempt), 10)
	b = appendKeyString(b, "state", string(s.State))
	if s.WorkerID != "" {
		b = appendKeyString(b, "worker_id", s.WorkerID)
	}
	if s.ColdStart {
		b = append(b, `,"cold_start":true`...)
	}
	for _, t := range [...]struct {
		key string
		t   time.Time
	}{{"start", s.Start}, {"func_start", s.FuncStart}, {"func_end", s.FuncEnd}, {"end", s.End}} {
		if t.t.IsZero() {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, t.key...)
		b = append(b, `":"`...)
		var err error
		if b, err = t.t.AppendText(b); err != nil {
			return nil, fmt.Errorf("encode status %s/%s/%s: %s: %w", s.ExecutorID, s.JobID, s.CallID, t.key, err)
		}
		b = append(b, '"')
	}
	if len(s.Result) > 0 {
		b = appendKeyBytes(b, "result", s.Result)
	}
	if s.HasResult {
		b = append(b, `,"has_result":true`...)
	}
	if s.ResultKey != "" {
		b = appendKeyString(b, "result_key", s.ResultKey)
	}
	b = appendKeyInt(b, "result_size", s.ResultSize)
	b = appendKeyInt(b, "peak_rss", s.PeakRSS)
	b = appendKeyInt(b, "log_size", s.LogSize)
	if e := s.Error; e != nil {
		b = append(b, `,"error":{"kind":`...)
		b = appendString(b, string(e.Kind))
		if e.Type != "" {
			b = appendKeyString(b, "type", e.Type)
		}
		b = appendKeyString(b, "message", e.Message)
		if e.Stack != "" {
			b = appendKeyString(b, "stack", e.Stack)
		}
		b = appendKeyInt(b, "exit_code", int64(e.ExitCode))
		if len(e.Chain) > 0 {
			b = append(b, `,"chain":[`...)
			for i, l := range e.Chain {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = appendString(b, l.Name)
				if l.Sentinel {
					b = append(b, `,"sentinel":true`...)
				}
				if l.Message != "" {
					b = appendKeyString(b, "message", l.Message)
				}
				if len(l.Value) > 0 {
					b = appendKeyBytes(b, "value", l.Value)
				}
				if l.Codec != "" {
					b = appendKeyString(b, "codec", l.Codec)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if s.Settled {
		b = append(b, `,"settled":true`...)
	}
	return append(b, '}'), nil
}

// appendKeyString appends `,"key":` and v as a JSON string.
func appendKeyString(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendKeyInt appends `,"key":v`, or nothing for 0 (omitempty).
func appendKeyInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

// appendKeyBytes appends `,"key":` and v in base64, as encoding/json
// encodes a []byte.
func appendKeyBytes(b []byte, key string, v []byte) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':', '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it: control characters, quote and backslash, '<', '>' and '&'
// (HTML-safe), invalid UTF-8 as U+FFFD, and U+2028 and U+2029.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
