// Package http serves countersign's REST API and web UI: one route table
// (routes.go) in which each route declares who may call it, one dispatcher
// that enforces it (dispatch.go), one error table (error.go), strict JSON
// decoding, request ids, metrics, Server-Sent Events and a generated
// OpenAPI document. Handlers live in one file per area of the table.
package http

import (
	"context"
	"crypto/subtle"
	"html/template"
	"log/slog"
	"math/big"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/daemon"
	"github.com/countersign/countersign/web"
)

// DevChain is the development chain's faucet, present only when the
// embedded chain runs.
type DevChain interface {
	Info() (faucet, token, counter string)
	Fund(ctx context.Context, address string, wei *big.Int) (txHash string, err error)
	Mint(ctx context.Context, address string, units *big.Int) (txHash string, err error)
}

// Server is the HTTP API over a core.Service.
type Server struct {
	Svc      *core.Service
	Log      *slog.Logger
	Dev      DevChain // nil unless the embedded chain runs
	Registry *prometheus.Registry
	Version  string

	// ApprovalWait is how long eth_sendTransaction, personal_sign and
	// eth_signTypedData_v4 on /eth wait for the human before answering
	// with the transaction_id to poll (default 2 minutes).
	ApprovalWait time.Duration
	// MCP serves the Model Context Protocol at /mcp when set.
	MCP http.Handler
	// Explorer is a block explorer's base URL; the UI links tx/<hash> to it.
	Explorer string
	// Derived is the derived-key signer behind /dev/*; nil disables them
	// (503). ServiceToken is the bearer token those routes require.
	Derived      countersign.DerivedSigner
	ServiceToken string
	// Daemon is the local wallet daemon behind /v1/wallet…; WalletToken is
	// the X-Auth-Token its routes require (empty: they answer no one).
	Daemon      *daemon.Service
	WalletToken string
	// WalletRemote is set when the operator chose WALLET_TOKEN: only then
	// may clients beyond this machine (a non-loopback peer without
	// WALLET_ALLOW, or a request relayed by a proxy) use the daemon.
	WalletRemote         bool
	WalletAllow          []netip.Prefix // WALLET_ALLOW: when set, the only non-loopback clients the daemon answers
	WalletAllowedHosts   []string       // WALLET_ALLOWED_HOSTS: Host names accepted besides loopback ones
	WalletAllowedOrigins []string       // WALLET_ALLOWED_ORIGINS: the only origins whose requests the daemon answers
	// TrustedProxies (TRUSTED_PROXIES) are the load balancers whose
	// X-Forwarded-For names the client (proxies.go).
	TrustedProxies []netip.Prefix
	ExportScryptN  int // scrypt N of exported v3 keystores (default 2^18, geth's standard)
	// MetricsToken, when set, is the bearer token /metrics requires from
	// anyone; without it /metrics answers loopback clients only.
	MetricsToken string

	walletLimiter  tokenLimiter // wrong X-Auth-Token backoff, per client
	metricsLimiter tokenLimiter // wrong METRICS_TOKEN backoff, per client

	tmplOnce sync.Once
	tmpl     *template.Template

	metrics struct {
		requests *prometheus.CounterVec
		latency  *prometheus.HistogramVec
	}
	openapi []byte
}

// NewServer builds the server and registers its metrics on reg.
func NewServer(svc *core.Service, log *slog.Logger, dev DevChain, reg *prometheus.Registry) *Server {
	s := &Server{Svc: svc, Log: log, Dev: dev, Registry: reg, ApprovalWait: 2 * time.Minute, ExportScryptN: 1 << 18}
	s.metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "countersign_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "code"})
	s.metrics.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "countersign_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route"})
	reg.MustRegister(s.metrics.requests, s.metrics.latency, &txCollector{svc: svc}, &chargeCollector{svc: svc})
	s.openapi = buildOpenAPI(Routes())
	return s
}

// txCollector reports transactions by status from the store at scrape time.
type txCollector struct{ svc *core.Service }

var txDesc = prometheus.NewDesc("countersign_transactions", "Transactions by status.", []string{"status"}, nil)

var trackerErrDesc = prometheus.NewDesc("countersign_tracker_errors_total", "Receipt-tracker errors (one transaction each; the pass goes on).", nil, nil)

func (c *txCollector) Describe(ch chan<- *prometheus.Desc) { ch <- txDesc; ch <- trackerErrDesc }

func (c *txCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(trackerErrDesc, prometheus.CounterValue, float64(c.svc.TrackerErrors()))
	counts, err := c.svc.TransactionCounts(context.Background())
	if err != nil {
		return
	}
	for _, st := range countersign.Statuses {
		ch <- prometheus.MustNewConstMetric(txDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// checkService admits the holder of the service credential. The signer must
// be enabled first: without it the routes answer 503 whoever calls.
func (s *Server) checkService(r *http.Request) error {
	if s.Derived == nil {
		return countersign.Errorf(countersign.SignerDisabled, "signer_disabled: the derived-key signer is not enabled (set DEV_KEY_SERVICE_MASTER_SECRET, or SIGNER_URL)")
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if s.ServiceToken == "" || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(tok), []byte(s.ServiceToken)) != 1 {
		return countersign.Errorf(countersign.Unauthorized, "the signer routes need the service credential: Authorization: Bearer <SIGNER_TOKEN>")
	}
	return nil
}

// SignerHandler serves only the derived-key signer routes (and /healthz):
// the separate `countersign signer` process, the future TEE boundary.
func (s *Server) SignerHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		if rt.Access == Service || rt.Path == "/healthz" {
			pattern := rt.Method + " " + rt.Path
			mux.Handle(pattern, s.wrap(pattern, s.guard(rt)))
		}
	}
	mux.Handle("/", s.wrap("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.Log, countersign.Errorf(countersign.NotFound, "no route %s %s", r.Method, r.URL.Path))
	})))
	return mux
}

// NewSignerServer is a Server for SignerHandler only.
func NewSignerServer(d countersign.DerivedSigner, token string, log *slog.Logger, reg *prometheus.Registry) *Server {
	s := &Server{Log: log, Derived: d, ServiceToken: token, Registry: reg}
	s.metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "countersign_signer_requests_total", Help: "Signer requests."}, []string{"route", "code"})
	s.metrics.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "countersign_signer_request_duration_seconds", Help: "Signer latency."}, []string{"route"})
	reg.MustRegister(s.metrics.requests, s.metrics.latency)
	return s
}

// Handler returns the HTTP handler for every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		if rt.DevOnly && s.Dev == nil {
			continue // 404 when the embedded chain does not run
		}
		pattern := rt.Method + " " + rt.Path
		mux.Handle(pattern, s.wrap(pattern, s.dispatch(rt)))
	}
	static := http.FileServerFS(web.Static())
	mux.Handle("GET /static/", s.wrap("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		static.ServeHTTP(w, r)
	}))))
	mux.Handle("GET /metrics", s.wrap("GET /metrics", s.metricsGuard(promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))))
	mux.Handle("/", s.wrap("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.Log, countersign.Errorf(countersign.NotFound, "no route %s %s", r.Method, r.URL.Path))
	})))
	return mux
}
