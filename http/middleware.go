package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID accepts a caller's id only if it is short and plain, so
// it cannot forge log lines or headers.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LogHandler adds the request id of the context to every log record, so
// every line logged while serving a request carries it.
type LogHandler struct{ slog.Handler }

func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h LogHandler) WithAttrs(a []slog.Attr) slog.Handler { return LogHandler{h.Handler.WithAttrs(a)} }
func (h LogHandler) WithGroup(n string) slog.Handler      { return LogHandler{h.Handler.WithGroup(n)} }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap is the outer middleware: request id, security headers, panic
// recovery, an access log line and metrics.
//
// It runs on every request, so it keeps its per-request work small (from
// CPU profiles of the signing and status paths): the route's latency
// observer and its success counter are looked up once, here, not per
// request; the headers are set under their canonical names without
// canonicalising them again; the access line is built from typed
// attributes (slog.LogAttrs: no boxing of each value) and only when the
// logger would write it. The line, the headers and the metrics are the
// same as before.
func (s *Server) wrap(pattern string, next http.Handler) http.Handler {
	latency := s.metrics.latency.WithLabelValues(pattern)
	ok := s.metrics.requests.WithLabelValues(pattern, "200")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		ctx := core.WithClientAddr(context.WithValue(r.Context(), requestIDKey, id), s.clientAddrOf(r))
		r = r.WithContext(ctx)
		h := w.Header()
		h["X-Request-Id"] = []string{id}
		h["X-Content-Type-Options"] = securityNosniff
		h["X-Frame-Options"] = securityDeny
		h["Referrer-Policy"] = securityNoReferrer
		h["Content-Security-Policy"] = securityCSP
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.Log.ErrorContext(ctx, "panic", "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, s.Log, countersign.Errorf(countersign.Internal, "internal error"))
				}
			}
			d := time.Since(start)
			if sw.status == http.StatusOK {
				ok.Inc()
			} else {
				s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
			}
			latency.Observe(d.Seconds())
			if s.Log.Enabled(ctx, slog.LevelInfo) {
				s.Log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("route", pattern), slog.Int("status", sw.status),
					slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("client", clientAddr(r)))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// The security headers' values, shared by every answer (a handler that
// changes one sets a new slice; none appends to these).
var (
	securityNosniff    = []string{"nosniff"}
	securityDeny       = []string{"DENY"}
	securityNoReferrer = []string{"no-referrer"}
	securityCSP        = []string{"default-src 'none'; frame-ancestors 'none'"}
)

// clientAddr is the client's address: the one wrap stored (the peer, or
// with TRUSTED_PROXIES the client its proxy names: proxies.go), else the
// peer. X-Forwarded-For from anyone else is not believed.
func clientAddr(r *http.Request) string {
	if a := core.ClientAddrFrom(r.Context()); a != "" {
		return a
	}
	return peerAddr(r)
}
