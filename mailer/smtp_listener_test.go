package mailer_test

import (
	"context"
	"encoding/base64"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/mailer"
)

// smtpServer is a tiny SMTP listener on loopback: it records the
// commands, the envelope and the message, and takes AUTH PLAIN for one
// user and password.
type smtpServer struct {
	ln         net.Listener
	user, pass string

	mu       sync.Mutex
	commands []string
	from     string
	rcpt     []string
	data     string
	authed   bool
}

func startSMTP(t *testing.T, addr, user, pass string) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, user: user, pass: pass}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			tp.PrintfLine("250-test\r\n250-AUTH PLAIN\r\n250 8BITMIME")
		case "AUTH":
			parts := strings.Fields(line)
			b, _ := base64.StdEncoding.DecodeString(parts[len(parts)-1])
			if string(b) == "\x00"+s.user+"\x00"+s.pass {
				s.mu.Lock()
				s.authed = true
				s.mu.Unlock()
				tp.PrintfLine("235 ok")
			} else {
				tp.PrintfLine("535 authentication failed")
			}
		case "MAIL":
			if s.user != "" && !s.authed {
				tp.PrintfLine("530 authentication required")
				continue
			}
			s.mu.Lock()
			s.from = line
			s.mu.Unlock()
			tp.PrintfLine("250 ok")
		case "RCPT":
			s.mu.Lock()
			s.rcpt = append(s.rcpt, line)
			s.mu.Unlock()
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go on")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.data = string(b)
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("250 ok")
		}
	}
}

func (s *smtpServer) sawAuth() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.commands {
		if strings.HasPrefix(strings.ToUpper(c), "AUTH") {
			return true
		}
	}
	return false
}

// The message reaches the server as sent: envelope, headers, body (with
// a line holding only "." kept, not taken as the end of the message).
func TestSMTPMessageSent(t *testing.T) {
	s := startSMTP(t, "127.0.0.1:0", "", "")
	m := &mailer.SMTP{Addr: s.addr(), From: "countersign@example.test"}
	body := "Your login code is 123456.\r\n.\r\nIt expires in 10 minutes."
	if err := m.Send(context.Background(), "alice@example.test", "Your login code", body); err != nil {
		t.Fatal(err)
	}
	if s.sawAuth() {
		t.Fatal("AUTH sent without a username")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.from != "MAIL FROM:<countersign@example.test> BODY=8BITMIME" && s.from != "MAIL FROM:<countersign@example.test>" {
		t.Fatalf("envelope from %q", s.from)
	}
	if len(s.rcpt) != 1 || s.rcpt[0] != "RCPT TO:<alice@example.test>" {
		t.Fatalf("envelope rcpt %q", s.rcpt)
	}
	head, gotBody, ok := strings.Cut(s.data, "\n\n")
	if !ok {
		t.Fatalf("no header/body split: %q", s.data)
	}
	for _, h := range []string{"From: countersign@example.test", "To: alice@example.test", "Subject: Your login code", "MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8", "Date: "} {
		if !strings.Contains(head, h) {
			t.Fatalf("header %q missing from %q", h, head)
		}
	}
	if gotBody != "Your login code is 123456.\n.\nIt expires in 10 minutes.\n" {
		t.Fatalf("body %q", gotBody)
	}
	if s.authed {
		t.Fatal("authenticated without a username")
	}
}

func TestSMTPAuth(t *testing.T) {
	s := startSMTP(t, "127.0.0.1:0", "mailuser", "s3cret-pass")
	ctx := context.Background()
	t.Run("ok/PLAIN to loopback", func(t *testing.T) {
		m := &mailer.SMTP{Addr: s.addr(), From: "cs@example.test", Username: "mailuser", Password: "s3cret-pass"}
		if err := m.Send(ctx, "bob@example.test", "code", "123456"); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.authed || !strings.Contains(s.data, "123456") {
			t.Fatalf("authed %v, data %q", s.authed, s.data)
		}
	})
	t.Run("fail/wrong password", func(t *testing.T) {
		m := &mailer.SMTP{Addr: s.addr(), From: "cs@example.test", Username: "mailuser", Password: "wrong"}
		err := m.Send(ctx, "bob@example.test", "code", "654321")
		if err == nil || !strings.Contains(err.Error(), "535") {
			t.Fatalf("a refused login: %v", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("the password is in the error: %v", err)
		}
	})
}

// TestSecurity_SMTPPasswordNeverInClear: to a server that is not
// localhost and offers no TLS, the client refuses to authenticate rather
// than send the password in clear (net/smtp's PLAIN rule, which the
// mailer relies on). 127.0.0.2 is loopback to the kernel, but not a name
// PlainAuth treats as local, like a remote relay.
func TestSecurity_SMTPPasswordNeverInClear(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal("127.0.0.2 (loopback on Linux) cannot be listened on:", err)
	}
	ln.Close()
	s := startSMTP(t, "127.0.0.2:0", "mailuser", "s3cret-pass")
	m := &mailer.SMTP{Addr: s.addr(), From: "cs@example.test", Username: "mailuser", Password: "s3cret-pass"}
	if err := m.Send(context.Background(), "bob@example.test", "code", "123456"); err == nil {
		t.Fatal("sent with PLAIN auth over an unencrypted connection to a non-local host")
	}
	if s.sawAuth() {
		t.Fatal("the AUTH command (with the password) went out in clear")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != "" {
		t.Fatalf("the message was delivered: %q", s.data)
	}
}

// TestSecurity_SMTPHeaderInjection: CR or LF in the recipient, subject or
// sender is refused before any connection, so a user-supplied address
// cannot add a Bcc: header or a second message.
func TestSecurity_SMTPHeaderInjection(t *testing.T) {
	s := startSMTP(t, "127.0.0.1:0", "", "")
	cases := map[string]struct{ from, to, subject string }{
		"fail/to with Bcc":       {"cs@example.test", "alice@example.test\r\nBcc: eve@example.test", "code"},
		"fail/subject with LF":   {"cs@example.test", "alice@example.test", "code\nBcc: eve@example.test"},
		"fail/from with CR":      {"cs@example.test\rX: y", "alice@example.test", "code"},
		"fail/to with bare LF":   {"cs@example.test", "alice@example.test\n", "code"},
		"fail/subject with CRLF": {"cs@example.test", "alice@example.test", "a\r\n\r\nforged body"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := &mailer.SMTP{Addr: s.addr(), From: c.from}
			if err := m.Send(context.Background(), c.to, c.subject, "body"); err == nil {
				t.Fatal("sent")
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commands) != 0 {
		t.Fatalf("the server was contacted: %q", s.commands)
	}
}

func TestSMTPConnectionFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("fail/refused connection", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if err := (&mailer.SMTP{Addr: addr, From: "cs@example.test"}).Send(ctx, "a@example.test", "s", "b"); err == nil {
			t.Fatal("sent to a closed port")
		}
	})
	t.Run("fail/address without port", func(t *testing.T) {
		if err := (&mailer.SMTP{Addr: "127.0.0.1", From: "cs@example.test"}).Send(ctx, "a@example.test", "s", "b"); err == nil {
			t.Fatal("sent with no port")
		}
	})
	t.Run("fail/hung server bounded by the context", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close() // never greets
			}
		}()
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := (&mailer.SMTP{Addr: ln.Addr().String(), From: "cs@example.test"}).Send(dctx, "a@example.test", "s", "b")
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
	t.Run("fail/server rejects the recipient", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			tp := textproto.NewConn(c)
			tp.PrintfLine("220 hi")
			for {
				line, err := tp.ReadLine()
				if err != nil {
					return
				}
				switch {
				case strings.HasPrefix(line, "EHLO"):
					tp.PrintfLine("250 test")
				case strings.HasPrefix(line, "RCPT"):
					tp.PrintfLine("550 no such user")
				default:
					tp.PrintfLine("250 ok")
				}
			}
		}()
		err := (&mailer.SMTP{Addr: ln.Addr().String(), From: "cs@example.test"}).Send(ctx, "nobody@example.test", "s", "b")
		if err == nil || !strings.Contains(err.Error(), "550") {
			t.Fatalf("a rejected recipient: %v", err)
		}
	})
}
