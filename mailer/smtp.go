// Package mailer sends email over SMTP (countersign.Mailer): the login codes of
// email sign-in.
package mailer

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// SMTP sends through one server. With Username set it authenticates with
// PLAIN, which net/smtp only allows over TLS or to localhost.
type SMTP struct {
	Addr     string // host:port
	From     string
	Username string
	Password string
}

// Send delivers a plain-text message.
func (m *SMTP) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to+subject+m.From, "\r\n") {
		return fmt.Errorf("mailer: header injection refused")
	}
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return err
	}
	var auth smtp.Auth
	if m.Username != "" {
		auth = smtp.PlainAuth("", m.Username, m.Password, host)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(m.Addr, auth, m.From, []string{to}, []byte(msg)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
