package daemon

import (
	"context"
	"strings"

	"github.com/countersign/countersign"
)

// Account tags: the operator's labels for accounts (the AITBC
// wallet-daemon design's account metadata), such as {"role": "payout"}.
const (
	maxTags      = 16
	maxTagKey    = 32
	maxTagValue  = 128
	tagKeyDetail = "tag names are 1 to 32 characters of a-z, 0-9, '_', '-' and '.'"
)

// CheckTags validates a set of tags.
func CheckTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return countersign.Errorf(countersign.BadRequest, "at most %d tags", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKey || strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
		}) >= 0 {
			return countersign.Errorf(countersign.BadRequest, "tag %q: %s", truncate(k, 40), tagKeyDetail)
		}
		if err := countersign.CheckText(`tag "`+k+`"`, v, maxTagValue, false); err != nil {
			return err
		}
	}
	return nil
}

// truncate shortens s to n bytes for an error message (%q shows any
// rune it cuts as an escape).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// SetAccountTags replaces an account's tags.
func (d *Service) SetAccountTags(ctx context.Context, accountID string, tags map[string]string) (*countersign.DaemonAccount, error) {
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	err := d.record(ctx, "daemon.account.tags", accountID, tags, func(ctx context.Context) error {
		return d.store.SetDaemonAccountTags(ctx, accountID, tags)
	})
	d.accounts.Delete(accountID) // the cached row is stale now (or was never there)
	if err != nil {
		return nil, err
	}
	return d.account(ctx, accountID)
}
