package http

import (
	"context"
	"encoding/csv"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// GET /api/charge_receipts: the receipts of confirmed spends
// (core/charges.go), as JSON or, with format=csv, as a CSV file.

type chargesResp struct {
	Receipts []core.ChargeReceiptView `json:"receipts"`
}

var chargeCSVHeader = []string{"id", "created_at", "agent_id", "wallet_id", "transaction_id", "reason", "amount", "asset", "usd_estimate", "tx_hash", "rule_id"}

func (s *Server) chargeReceipts(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	q := r.URL.Query()
	f := countersign.ChargeFilter{AgentID: q.Get("agent_id"), WalletID: q.Get("wallet_id"), Reason: q.Get("reason"), Asset: q.Get("asset"), Limit: 1000}
	for _, v := range []struct {
		name, val string
		max       int
	}{{"agent_id", f.AgentID, 64}, {"wallet_id", f.WalletID, 64}, {"reason", f.Reason, 64}, {"asset", f.Asset, 64}} {
		if len(v.val) > v.max {
			return countersign.Errorf(countersign.BadRequest, "%s is longer than %d characters", v.name, v.max)
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := parseLimit(l, 10000)
		if err != nil {
			return err
		}
		f.Limit = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return countersign.Errorf(countersign.BadRequest, "%s must be an RFC 3339 time", t.name)
			}
			*t.dst = at
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return countersign.Errorf(countersign.BadRequest, "format must be json or csv")
	}
	list, err := s.Svc.ChargeReceipts(r.Context(), p, f)
	if err != nil {
		return err
	}
	if format != "csv" {
		return writeJSON(w, 200, chargesResp{Receipts: list})
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="charge_receipts.csv"`)
	w.WriteHeader(200)
	cw := csv.NewWriter(w)
	_ = cw.Write(chargeCSVHeader)
	for _, c := range list {
		usd := ""
		if c.USDEstimate != nil {
			usd = *c.USDEstimate
		}
		row := []string{c.ID, c.CreatedAt.UTC().Format(time.RFC3339Nano), c.AgentID, c.WalletID, c.TransactionID, c.Reason, c.Amount, c.Asset, usd, c.TxHash, c.RuleID}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return nil
}

// csvCell keeps a spreadsheet from running a cell as a formula (rule ids
// are the operator's text): such a cell gets a leading apostrophe.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// chargeCollector reports the receipts' totals from the store at scrape
// time, so every replica reports the same and a restart loses nothing.
type chargeCollector struct{ svc *core.Service }

var (
	spendDesc = prometheus.NewDesc("countersign_spend_base_units_total", "Confirmed spends per agent, wallet and asset, in the asset's base units (a float: for dashboards, never for accounting).",
		[]string{"agent_id", "wallet_id", "asset"}, nil)
	spendCountDesc = prometheus.NewDesc("countersign_spends_total", "Confirmed spends (charge receipts) per agent, wallet and asset.",
		[]string{"agent_id", "wallet_id", "asset"}, nil)
)

var balanceDesc = prometheus.NewDesc("countersign_wallet_balance_base_units", "The balance the last low-balance check read, per wallet and asset with an alert (a float: for dashboards).",
	[]string{"wallet_id", "asset"}, nil)
var balanceLowDesc = prometheus.NewDesc("countersign_wallet_balance_low", "1 while the last check found the balance below the wallet's alert threshold.",
	[]string{"wallet_id", "asset"}, nil)

func (c *chargeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- spendDesc
	ch <- spendCountDesc
	ch <- balanceDesc
	ch <- balanceLowDesc
}

func (c *chargeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if alerts, err := c.svc.WatchedBalances(ctx); err == nil {
		for _, a := range alerts {
			if a.LastBalance == "" {
				continue
			}
			f, ok := new(big.Float).SetString(a.LastBalance)
			if !ok {
				continue
			}
			v, _ := f.Float64()
			low := 0.0
			if a.Low {
				low = 1
			}
			ch <- prometheus.MustNewConstMetric(balanceDesc, prometheus.GaugeValue, v, a.WalletID, a.Asset)
			ch <- prometheus.MustNewConstMetric(balanceLowDesc, prometheus.GaugeValue, low, a.WalletID, a.Asset)
		}
	}
	totals, err := c.svc.ChargeTotals(ctx)
	if err != nil {
		return
	}
	for _, t := range totals {
		agent := t.AgentID
		if agent == "" {
			agent = "user"
		}
		ch <- prometheus.MustNewConstMetric(spendDesc, prometheus.CounterValue, t.Sum, agent, t.WalletID, t.Asset)
		ch <- prometheus.MustNewConstMetric(spendCountDesc, prometheus.CounterValue, float64(t.Count), agent, t.WalletID, t.Asset)
	}
}
