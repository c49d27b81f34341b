package http

import (
	"strconv"
	"time"

	"github.com/countersign/countersign"
)

// The query parameters of the UI and the API, parsed by small pure
// functions so one fuzz target covers them all (ui_params_test.go). Each
// accepts exactly its documented form and otherwise returns a BadRequest
// naming the parameter; none of them panics or wraps around.

// parseSeq parses a non-negative decimal sequence number or event id
// (after=, Last-Event-ID). Only ASCII digits: no sign, no spaces, no
// 0x, at most 2^63-1.
func parseSeq(name, s string) (int64, error) {
	if s == "" || len(s) > 19 || !allDigits(s) {
		return 0, countersign.Errorf(countersign.BadRequest, "%s must be a non-negative integer", name)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, countersign.Errorf(countersign.BadRequest, "%s must be a non-negative integer", name)
	}
	return n, nil
}

// parseLimit parses a page size from 1 to max.
func parseLimit(s string, max int) (int, error) {
	if s == "" || len(s) > 9 || !allDigits(s) {
		return 0, countersign.Errorf(countersign.BadRequest, "limit must be 1 to %d", max)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, countersign.Errorf(countersign.BadRequest, "limit must be 1 to %d", max)
	}
	return n, nil
}

// parseBefore parses a page cursor: an RFC 3339 time, as next_before and
// the UI's "older" links carry it.
func parseBefore(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, countersign.Errorf(countersign.BadRequest, "before must be an RFC 3339 time")
	}
	return t, nil
}

// parseWait parses a long-poll wait: a Go duration ("30s", "1m") or whole
// seconds ("30"), from 0 to MaxWait. Seconds are range-checked before they
// are multiplied, so a huge number cannot wrap around into a small wait.
func parseWait(s string) (time.Duration, error) {
	bad := countersign.Errorf(countersign.BadRequest, "wait must be a duration such as 30s, between 0s and %s", MaxWait)
	if allDigits(s) && s != "" {
		if len(s) > 9 {
			return 0, bad
		}
		n, err := strconv.Atoi(s)
		if err != nil || time.Duration(n) > MaxWait/time.Second {
			return 0, bad
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxWait {
		return 0, bad
	}
	return d, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
