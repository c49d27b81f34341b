package http

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// A client that hung up is not a server failure: no ERROR line, no 500
// in the log.
func TestWriteErrorClientGone(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/v1/wallet/create", nil).WithContext(ctx)
	writeError(httptest.NewRecorder(), r, log, fmt.Errorf("store: %w", context.Canceled))
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "client closed") {
		t.Fatalf("log: %s", logs.String())
	}
	// the same error while the client is still there is an internal error
	logs.Reset()
	writeError(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", nil), log, fmt.Errorf("store: %w", context.Canceled))
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("log: %s", logs.String())
	}
}
