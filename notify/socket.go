package notify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/countersign/countersign"
)

// ServeEventSocket streams every event (all owners: this is the operator's
// local view) as newline-delimited JSON to each client of a Unix socket,
// from the moment it connects (the AITBC wallet-daemon design: the local stream of "signed"
// notifications). The socket file is mode 0600. It returns when ctx ends.
func ServeEventSocket(ctx context.Context, path string, feed countersign.EventFeed, log *slog.Logger) error {
	_ = os.Remove(path) // a stale socket from an unclean stop
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go streamTo(ctx, c, feed, log)
	}
}

func streamTo(ctx context.Context, c net.Conn, feed countersign.EventFeed, log *slog.Logger) {
	defer c.Close()
	wake, stop := feed.Wake()
	defer stop()
	after, err := feed.LastEventIDAll(ctx)
	if err != nil {
		return
	}
	enc := json.NewEncoder(c)
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		evs, err := feed.AllEventsAfter(ctx, after, 100)
		if err != nil {
			return
		}
		for _, e := range evs {
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := enc.Encode(map[string]any{"id": e.ID, "type": e.Type, "subject": e.Subject, "owner": e.OwnerID,
				"created_at": e.CreatedAt, "data": json.RawMessage(e.Payload)}); err != nil {
				log.Debug("event socket client gone", "err", err)
				return
			}
			after = e.ID
		}
		if len(evs) == 100 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}
