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
func (s *Server) wrap(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		ctx := core.WithClientAddr(context.WithValue(r.Context(), requestIDKey, id), s.clientAddrOf(r))
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.Log.ErrorContext(ctx, "panic", "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, s.Log, countersign.Errorf(countersign.Internal, "internal error"))
				}
			}
			d := time.Since(start)
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
			s.metrics.latency.WithLabelValues(pattern).Observe(d.Seconds())
			s.Log.InfoContext(ctx, "request", "method", r.Method, "route", pattern, "status", sw.status,
				"duration_ms", float64(d.Microseconds())/1000, "client", clientAddr(r))
		}()
		next.ServeHTTP(sw, r)
	})
}

// clientAddr is the client's address: the one wrap stored (the peer, or
// with TRUSTED_PROXIES the client its proxy names: proxies.go), else the
// peer. X-Forwarded-For from anyone else is not believed.
func clientAddr(r *http.Request) string {
	if a := core.ClientAddrFrom(r.Context()); a != "" {
		return a
	}
	return peerAddr(r)
}
