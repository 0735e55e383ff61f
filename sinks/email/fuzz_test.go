package email

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/sinks"
)

// allowedHeaders are the only headers a welcome email may carry; anything
// else means a value broke out of its header.
var allowedHeaders = map[string]bool{
	"From": true, "To": true, "Subject": true, "Message-Id": true, "Date": true,
	"Auto-Submitted": true, "User-Agent": true, "X-Mailer": true,
	"Mime-Version": true, "Content-Type": true,
}

func FuzzWelcome(f *testing.F) {
	f.Add("Jane Doe", "Acme Corp", "jdoe@acme.example", "jdoe", "https://reset.example/e")
	f.Add("Jane\r\nBcc: x@evil.example", "Acme\nX-Injected: 1", "jdoe@acme.example", "j\rdoe", "https://reset.example/e")
	f.Add("\"Quoted\" <odd@name>", "Ünïcode ✓ Corp", "\"Jane D\" <jane@acme.example>", "ACME\\jdoe", "http://reset.example/?a=<b>")
	f.Add("J\xffne", "Acme", "jdoe@acme.example", "jdoe", "https://reset.example/e")
	f.Add("=?utf-8?q?Bcc:_x@y?=", "Acme", "a@b.c", "u", "https://r.example")
	f.Add(strings.Repeat("long name ", 40), "Acme", "jdoe@acme.example", "jdoe", "https://reset.example/e")
	m, err := New(Config{Host: "smtp.example.com", Username: "u", Password: "p", From: "IT <it@msp.example>"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, displayName, customerName, to, username, link string) {
		w := sinks.Welcome{Customer: "acme", CustomerName: customerName, To: to, DisplayName: displayName,
			Username: username, EnrollmentURL: link, MessageID: MessageID("acme", username)}
		msg, err := m.compose(w)
		invalid := !utf8.ValidString(displayName) || !utf8.ValidString(customerName) || !utf8.ValidString(to) ||
			!utf8.ValidString(username) || !utf8.ValidString(link)
		if invalid {
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("invalid UTF-8 accepted or unclear: %v", err)
			}
			return
		}
		if err != nil {
			return
		}
		gm := m.build(msg)
		var buf bytes.Buffer
		if _, err := gm.WriteTo(&buf); err != nil {
			t.Fatalf("write: %v", err)
		}
		parsed, err := mail.ReadMessage(&buf)
		if err != nil {
			t.Fatalf("the message does not parse: %v\n%s", err, buf.String())
		}
		for k, v := range parsed.Header {
			if !allowedHeaders[k] {
				t.Fatalf("unexpected header %q: %q", k, v)
			}
			if len(v) != 1 {
				t.Fatalf("header %q appears %d times", k, len(v))
			}
		}
		rcpts, err := parsed.Header.AddressList("To")
		if err != nil || len(rcpts) != 1 || !strings.EqualFold(rcpts[0].Address, msg.to.Address) {
			t.Fatalf("To = %v (%v), want only %s", rcpts, err, msg.to.Address)
		}
		if strings.ContainsAny(msg.subject, "\r\n") {
			t.Fatalf("subject %q spans lines", msg.subject)
		}
	})
}

func FuzzFromAddress(f *testing.F) {
	f.Add("IT <it@msp.example>")
	f.Add("\"IT\r\nBcc: x@y.example\" <it@msp.example>")
	f.Add("it@msp.example\r\nBcc: x@y.example")
	f.Add("=?utf-8?b?SVQ=?= <it@msp.example>")
	f.Add("\xff <it@msp.example>")
	f.Fuzz(func(t *testing.T, from string) {
		m, err := New(Config{Host: "smtp.example.com", From: from, TLS: "none", AllowNoTLS: true})
		if err != nil {
			if !utf8.ValidString(from) && !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("invalid UTF-8 reported unclearly: %v", err)
			}
			return
		}
		msg, err := m.compose(welcome("jdoe"))
		if err != nil {
			t.Fatal(err)
		}
		gm := m.build(msg)
		var buf bytes.Buffer
		if _, err := gm.WriteTo(&buf); err != nil {
			t.Fatalf("write: %v", err)
		}
		parsed, err := mail.ReadMessage(&buf)
		if err != nil {
			t.Fatalf("the message does not parse: %v", err)
		}
		for k := range parsed.Header {
			if !allowedHeaders[k] {
				t.Fatalf("unexpected header %q from From %q", k, from)
			}
		}
		if got, err := parsed.Header.AddressList("From"); err != nil || len(got) != 1 || got[0].Address != m.from.Address {
			t.Fatalf("From = %v (%v), want %s", got, err, m.from.Address)
		}
	})
}
