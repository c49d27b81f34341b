package http

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

func TestQueryParams(t *testing.T) {
	t.Run("wait", func(t *testing.T) {
		for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "30": 30 * time.Second, "0": 0, "0s": 0, "1m": time.Minute, "60": time.Minute, "250ms": 250 * time.Millisecond, "007": 7 * time.Second} {
			if got, err := parseWait(in); err != nil || got != want {
				t.Errorf("ok/%q: %v, %v; want %v", in, got, err, want)
			}
		}
		// 18446744074 s wraps around int64 nanoseconds to about 0.29 s: the
		// old parser multiplied first and accepted it.
		for _, in := range []string{"", "61", "61s", "-1", "-1s", "2m", "18446744074", "9223372037", "99999999999999999999", "+5", " 5", "5 ", "1e3", "0x10", "s", "∞"} {
			if d, err := parseWait(in); countersign.ErrorCode(err) != countersign.BadRequest {
				t.Errorf("fail/%q: %v, %v", in, d, err)
			}
		}
	})
	t.Run("limit", func(t *testing.T) {
		for in, want := range map[string]int{"1": 1, "1000": 1000, "050": 50} {
			if got, err := parseLimit(in, 1000); err != nil || got != want {
				t.Errorf("ok/%q: %v, %v", in, got, err)
			}
		}
		for _, in := range []string{"", "0", "1001", "-1", "+1", "1.5", " 1", "9999999999999999999999", "0x10"} {
			if n, err := parseLimit(in, 1000); countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), "limit must be 1 to 1000") {
				t.Errorf("fail/%q: %v, %v", in, n, err)
			}
		}
	})
	t.Run("before", func(t *testing.T) {
		for _, in := range []string{"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456789+02:00"} {
			if _, err := parseBefore(in); err != nil {
				t.Errorf("ok/%q: %v", in, err)
			}
		}
		for _, in := range []string{"", "2026-01-02", "yesterday", "2026-13-01T00:00:00Z", "1767225600"} {
			if _, err := parseBefore(in); countersign.ErrorCode(err) != countersign.BadRequest {
				t.Errorf("fail/%q: %v", in, err)
			}
		}
	})
	t.Run("Last-Event-ID", func(t *testing.T) {
		for _, tc := range []struct {
			header, after string
			want          int64
		}{{"", "", -1}, {"0", "", 0}, {"41", "", 41}, {"", "7", 7}, {"41", "7", 7}, {"9223372036854775807", "", 1<<63 - 1}} {
			if got, err := eventCursor(tc.header, tc.after); err != nil || got != tc.want {
				t.Errorf("ok/%q,%q: %v, %v; want %d", tc.header, tc.after, got, err, tc.want)
			}
		}
		for _, tc := range []struct{ header, after, name string }{
			{"-1", "", "Last-Event-ID"}, {"+1", "", "Last-Event-ID"}, {"1 ", "", "Last-Event-ID"}, {"9223372036854775808", "", "Last-Event-ID"},
			{"abc", "", "Last-Event-ID"}, {"", "-5", "after"}, {"1", "x", "after"},
		} {
			if _, err := eventCursor(tc.header, tc.after); countersign.ErrorCode(err) != countersign.BadRequest || !strings.HasPrefix(countersign.ErrorDetail(err), tc.name+" ") {
				t.Errorf("fail/%q,%q: %v, want a BadRequest naming %s", tc.header, tc.after, err, tc.name)
			}
		}
	})
}

// FuzzQueryParams fuzzes the parsers of the UI and API query parameters
// (before, wait, limit, after, Last-Event-ID): each returns a BadRequest or
// a value inside its documented range that matches the input; none panics.
func FuzzQueryParams(f *testing.F) {
	f.Add("2026-01-02T03:04:05Z", "30s", "100", "41")
	f.Add("2026-01-02T03:04:05.999999999-07:00", "60", "1000", "0")
	f.Add("", "18446744074", "0", "-1")
	f.Add("0000-01-01T00:00:00Z", "-0s", "+1", "9223372036854775808")
	f.Add("9999-12-31T23:59:59.999999999+23:59", "1h", "1001", " 1")
	f.Fuzz(func(t *testing.T, before, wait, limit, lastEventID string) {
		if b, err := parseBefore(before); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("before %q: %v", before, err)
			}
		} else if again, err := parseBefore(b.Format(time.RFC3339Nano)); err != nil || !again.Equal(b) {
			t.Fatalf("before %q = %v does not round-trip: %v %v", before, b, again, err)
		}

		if d, err := parseWait(wait); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("wait %q: %v", wait, err)
			}
		} else {
			if d < 0 || d > MaxWait {
				t.Fatalf("wait %q = %v: outside 0..%v", wait, d, MaxWait)
			}
			if n, err := strconv.ParseUint(wait, 10, 64); err == nil && time.Duration(n)*time.Second != d {
				t.Fatalf("wait %q = %v, want %d s", wait, d, n)
			}
		}

		if n, err := parseLimit(limit, 1000); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("limit %q: %v", limit, err)
			}
		} else if m, err := strconv.Atoi(limit); err != nil || m != n || n < 1 || n > 1000 {
			t.Fatalf("limit %q = %d", limit, n)
		}

		if id, err := eventCursor(lastEventID, ""); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("Last-Event-ID %q: %v", lastEventID, err)
			}
		} else if lastEventID == "" && id != -1 || lastEventID != "" && (id < 0 || strings.TrimLeft(strconv.FormatInt(id, 10), "0") != strings.TrimLeft(lastEventID, "0")) {
			t.Fatalf("Last-Event-ID %q = %d", lastEventID, id)
		}
	})
}
