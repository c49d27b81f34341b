package mcp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// asAgent puts an agent principal in each request's context, as the HTTP
// layer's route guard does.
func asAgent(h http.Handler) http.Handler {
	p := &core.Principal{User: &countersign.User{ID: "u1"}, Agent: &countersign.Agent{ID: "a1", OwnerID: "u1"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(core.WithPrincipal(r.Context(), p)))
	})
}

// toolsList is a JSON-RPC tools/list call padded with trailing spaces to
// exactly n bytes.
func toolsList(n int) string {
	msg := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	return msg + strings.Repeat(" ", n-len(msg))
}

// /mcp used to take bodies up to the SDK's 4 MiB default although the
// documented limit of every API body is 256 KiB. A body of 256 KiB is
// served; one byte more is refused with 413 TOO_LARGE before the SDK
// parses it, whether it has a Content-Length or is chunked.
func TestSecurity_MCPBodyLimit(t *testing.T) {
	ts := httptest.NewServer(asAgent(Handler(nil))) // tools/list needs no service
	t.Cleanup(ts.Close)
	post := func(body string, chunked bool) (int, string, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, err := http.NewRequest("POST", ts.URL, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}

	for _, chunked := range []bool{false, true} {
		st, _, body := post(toolsList(MaxBody), chunked)
		if st != 200 || !strings.Contains(body, "prepare_transaction") {
			t.Fatalf("chunked=%v: a %d-byte call: %d %.300s", chunked, MaxBody, st, body)
		}
		st, ct, body := post(toolsList(MaxBody+1), chunked)
		var e struct {
			Error struct{ Code, Detail string }
		}
		if err := json.Unmarshal([]byte(body), &e); st != http.StatusRequestEntityTooLarge || ct != "application/json" || err != nil ||
			e.Error.Code != string(countersign.TooLarge) || !strings.Contains(e.Error.Detail, "256 KiB") {
			t.Fatalf("chunked=%v: a %d-byte call: %d %s %.300s", chunked, MaxBody+1, st, ct, body)
		}
	}
	if st, _, body := post(toolsList(4<<20-1), false); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 4 MiB call: %d %.300s", st, body)
	}
}
