package main

import (
	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// liveConfig wires the live updates across replicas: on PostgreSQL every
// replica polls the outbox (EVENT_POLL_INTERVAL) and listens for the
// store's NOTIFY wake-ups, so a change any replica commits reaches the SSE
// streams, long polls and WebSockets of all of them. SQLite is one
// process: its in-process wake-ups are all there is.
func liveConfig(cfg *Config, st countersign.Store) core.LiveConfig {
	if !isPostgres(cfg.DB) {
		return core.LiveConfig{}
	}
	live := core.LiveConfig{Shared: true, PollInterval: cfg.EventPoll}
	if sig, ok := st.(countersign.EventSignal); ok && !cfg.NoListen {
		live.Signal = sig
	}
	return live
}
