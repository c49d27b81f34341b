//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecurity_WebSocketSlowClientDisconnected: an agent that opens
// /api/ws and never reads (its receive window held tiny) fills its socket
// buffers; the server's write times out and it drops that socket instead
// of blocking or buffering without bound, while another socket of the
// same agent goes on receiving every event at once. A server that waited
// on the slow socket forever (no write deadline) would keep it open.
func TestSecurity_WebSocketSlowClientDisconnected(t *testing.T) {
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return errors.Join(err, serr)
	}}
	slow, err := d.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	req, _ := http.NewRequest("GET", e.url+"/api/ws?after=0", nil)
	req.Header.Set("X-API-KEY", key)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(nonce))
	if err := req.Write(slow); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(slow, 16)
	res, err := http.ReadResponse(br, req)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", res, err)
	}
	// the fast socket of the same agent reads as events come
	fast := wsMustDial(t, e, key, "")
	fastGot := make(chan wsMsg, 1024)
	go func() {
		defer close(fastGot)
		for {
			m, err := wsNext(fast, time.Minute)
			if err != nil {
				return
			}
			fastGot <- m
		}
	}()

	// Each event carries its transaction's calldata (about 100 kB of hex
	// here): a hundred of them overflow the slow socket's window and the
	// server's send buffer (at most 4 MiB on Linux) several times over.
	counter := e.do("GET", "/api/dev/info", anon, nil).must(t, 200).str("counter_address")
	data := "0xdeadbeef" + strings.Repeat("00", 50_000)
	var ids []string
	for range 100 {
		ids = append(ids, e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "contract_call", "contract_address": counter, "data": data}).must(t, 202).str("transaction_id"))
	}
	for seen := 0; seen < len(ids); {
		select {
		case m, ok := <-fastGot:
			if !ok {
				t.Fatalf("the reading socket was closed after %d of %d events", seen, len(ids))
			}
			if m.txID() != ids[seen] {
				t.Fatalf("event %d is %s, want %s", seen, m.txID(), ids[seen])
			}
			seen++
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading socket got %d of %d events: held up by the one that does not read", seen, len(ids))
		}
	}

	// the server gives up on the slow socket after its write timeout: once
	// the client finally reads, it finds the buffered bytes and then the
	// end of the connection, not an endless stream
	time.Sleep(12 * time.Second) // http's wsWriteTimeout (10 s) and a margin
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return // EOF or reset: disconnected
	}
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept writing to a socket that did not read for longer than its write timeout")
	}
	t.Fatalf("reading the slow socket: %v", err)
}
