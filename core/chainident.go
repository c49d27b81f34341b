package core

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/countersign/countersign"
)

// ChainCheck says how CheckChain treats the connected chain.
type ChainCheck struct {
	// Embedded: the connected chain is the in-process dev chain, which is a
	// new chain (a new genesis) on every start. A change from an embedded
	// chain to another embedded chain of the same id is expected.
	Embedded bool
	// AcceptNew: the operator accepts that the connected chain is not the
	// one recorded for this data (--accept-new-chain, ACCEPT_NEW_CHAIN=1).
	AcceptNew bool
}

// ChainChange is what CheckChain found and did.
type ChainChange struct {
	Previous *countersign.ChainIdentity // nil when none was recorded
	Current  countersign.ChainIdentity
	Changed  bool // Previous was another chain (or unknown, with stale rows)
	Dropped  int  // transactions marked dropped
	Nonces   int64
}

// CheckChain binds this data to the connected chain. The first start
// records the chain's identity (chain id and genesis hash). A later start
// on the same chain does nothing. A start on another chain — another id,
// or the same id with another genesis block (a testnet reset, a fresh
// geth --dev, the embedded chain restarted) — is refused, unless it is
// the embedded chain replacing itself or the operator accepted the change.
// An accepted change marks every transaction still authorized or in
// flight as dropped (audited, with both identities) and resets the nonce
// counters: their signed bytes would be replayed onto a chain with the
// same id, their nonces are the old chain's, and their fate on the old
// chain is no longer this server's to track.
//
// Without a recorded identity (a database from before this check) the
// old chain is unknown: in-flight rows of another chain id mean the data
// belongs elsewhere (refused unless accepted); on the embedded chain
// in-flight rows can only be from an earlier, gone dev chain (dropped).
func (s *Service) CheckChain(ctx context.Context, opts ChainCheck) (*ChainChange, error) {
	genesis, err := s.chain.GenesisHash(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the chain's genesis block: %w", err)
	}
	if !s.chainID.IsInt64() {
		return nil, fmt.Errorf("chain id %s does not fit the store", s.chainID)
	}
	ch := &ChainChange{Current: countersign.ChainIdentity{ChainID: s.chainID.Int64(), GenesisHash: genesis,
		Embedded: opts.Embedded, RecordedAt: s.clock.Now().UTC()}}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		prev, err := s.store.ChainIdentity(ctx)
		switch {
		case countersign.ErrorCode(err) == countersign.NotFound:
			prev = nil
		case err != nil:
			return err
		case prev.ChainID == ch.Current.ChainID && prev.GenesisHash == ch.Current.GenesisHash:
			ch.Previous = prev
			return nil // the same chain: nothing to do, and nothing to write
		}
		ch.Previous = prev
		inFlight, err := s.chainRowsInFlight(ctx)
		if err != nil {
			return err
		}
		if inFlight, err = judgeChainChange(prev, ch.Current, opts, inFlight); err != nil {
			return err
		}
		ch.Changed = prev != nil || len(inFlight) > 0
		from := "unknown"
		if prev != nil {
			from = prev.GenesisHash
		}
		details := map[string]any{"previous_chain_id": chainIDOf(prev), "previous_genesis": from,
			"chain_id": ch.Current.ChainID, "genesis": genesis, "embedded": opts.Embedded, "accepted_by_operator": opts.AcceptNew}
		// The counters to reset: the old chain's, the new one's unless
		// rows of its id are kept in flight (their nonces are taken), and
		// those of every dropped row's chain.
		chains := map[int64]bool{}
		if prev != nil {
			chains[prev.ChainID] = true
		}
		if prev != nil || opts.Embedded {
			chains[ch.Current.ChainID] = true
		}
		for _, t := range inFlight {
			chains[t.ChainID] = true
			t.Error = fmt.Sprintf("dropped: the server now uses chain %d (genesis %s); this transaction was %s on an earlier chain (genesis %s)",
				ch.Current.ChainID, short(genesis), t.Status, short(from))
			if err := s.setStatus(ctx, cs, t, countersign.StatusDropped, "system", "transaction.drop", details); err != nil {
				return err
			}
			ch.Dropped++
		}
		// The embedded chain is new on every start, so its counters are
		// stale even when no row is left in flight: kept, they would sit
		// above the new chain's nonces and every new transaction would wait
		// for the gap forever.
		if ch.Changed || opts.Embedded {
			for id := range chains {
				n, err := s.store.ResetNonces(ctx, id)
				if err != nil {
					return err
				}
				ch.Nonces += n
			}
		}
		if err := s.store.SetChainIdentity(ctx, &ch.Current); err != nil {
			return err
		}
		action := "chain.record"
		if ch.Changed {
			action = "chain.change"
		}
		details["dropped"], details["nonce_counters_reset"] = ch.Dropped, ch.Nonces
		cs.add(countersign.Change{Owner: SystemOwner, Actor: "system", Action: action, Subject: "chain:" + strconv.FormatInt(ch.Current.ChainID, 10), Details: details})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// judgeChainChange decides, for a start on chain cur after prev (nil: no
// recorded history), whether the start may go on and which of the rows in
// flight are dropped: with no history, rows of other chains refuse the
// start (unless accepted) and, on an external node, only those are
// dropped; with history, any change but a restarted embedded chain refuses
// the start unless the operator accepted it.
func judgeChainChange(prev *countersign.ChainIdentity, cur countersign.ChainIdentity, opts ChainCheck, inFlight []*countersign.Transaction) ([]*countersign.Transaction, error) {
	if prev == nil {
		// Unknown history: judge by the rows still in flight.
		other := map[int64]bool{}
		for _, t := range inFlight {
			if t.ChainID != cur.ChainID {
				other[t.ChainID] = true
			}
		}
		switch {
		case len(other) > 0 && !opts.AcceptNew:
			return nil, fmt.Errorf("this data holds transactions in flight on chain %s, but the node is chain %d (genesis %s): "+
				"refusing to start on another chain than the data's; point --chain (EVM_RPC_URL) at a node of that chain, "+
				"or pass --accept-new-chain (ACCEPT_NEW_CHAIN=1) to drop them and use this chain", ids(other), cur.ChainID, cur.GenesisHash)
		case !opts.Embedded:
			// An external node: rows of its own chain id may well be on
			// it, nothing says otherwise; only the others' are dropped.
			keep := inFlight[:0]
			for _, t := range inFlight {
				if other[t.ChainID] {
					keep = append(keep, t)
				}
			}
			inFlight = keep
		}
	} else {
		expected := opts.Embedded && prev.Embedded && prev.ChainID == cur.ChainID
		if !expected && !opts.AcceptNew {
			return nil, fmt.Errorf("this data belongs to chain %d (genesis %s%s), but the node is chain %d (genesis %s%s): "+
				"refusing to start on another chain; point --chain (EVM_RPC_URL) at a node of chain %d, or, if the change is intended, "+
				"pass --accept-new-chain (ACCEPT_NEW_CHAIN=1): transactions still authorized or in flight are then marked dropped",
				prev.ChainID, prev.GenesisHash, embeddedNote(prev.Embedded), cur.ChainID, cur.GenesisHash, embeddedNote(opts.Embedded), prev.ChainID)
		}
	}
	return inFlight, nil
}

// chainCheckMax bounds the rows CheckChain handles in one start.
const chainCheckMax = 100_000

// chainRowsInFlight returns every on-chain transaction that is authorized
// (approved, not yet signed) or submitted (signed, maybe broadcast).
// Message signatures belong to no chain and are left alone.
func (s *Service) chainRowsInFlight(ctx context.Context) ([]*countersign.Transaction, error) {
	var out []*countersign.Transaction
	for _, st := range []countersign.Status{countersign.StatusAuthorized, countersign.StatusSubmitted} {
		rows, err := s.store.TransactionsByStatus(ctx, st, chainCheckMax)
		if err != nil {
			return nil, err
		}
		if len(rows) >= chainCheckMax {
			return nil, fmt.Errorf("%d or more transactions are %s: too many to check against the chain in one start", chainCheckMax, st)
		}
		for _, t := range rows {
			if !t.Type.IsMessage() {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

func chainIDOf(id *countersign.ChainIdentity) any {
	if id == nil {
		return nil
	}
	return id.ChainID
}

func embeddedNote(embedded bool) string {
	if embedded {
		return ", the embedded dev chain"
	}
	return ""
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12] + "…"
	}
	return hash
}

func ids(m map[int64]bool) string {
	s := ""
	for id := range m {
		if s != "" {
			s += ", "
		}
		s += strconv.FormatInt(id, 10)
	}
	return s
}

// RebroadcastAfterRestart makes every submitted transaction due for the
// receipt tracker's next pass, and returns how many there are. After a
// restart nothing says the previous process got as far as broadcasting
// what it signed and stored (it may have died between the commit and the
// broadcast); the tracker would otherwise first wait out the rebroadcast
// backoff. A rebroadcast signs nothing: the same bytes, the same hash.
func (s *Service) RebroadcastAfterRestart(ctx context.Context) (int, error) {
	rows, err := s.store.TransactionsByStatus(ctx, countersign.StatusSubmitted, chainCheckMax)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.inTx(ctx, func(ctx context.Context) error {
		for _, t := range rows {
			cur, err := s.store.Transaction(ctx, t.ID)
			if err != nil {
				return err
			}
			if cur.Status != countersign.StatusSubmitted || len(cur.RawTx) == 0 {
				continue
			}
			n++
			if cur.NextBroadcastAt.IsZero() {
				continue
			}
			cur.NextBroadcastAt = time.Time{}
			if err := s.store.UpdateTransaction(ctx, cur); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
