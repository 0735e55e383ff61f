package email

import (
	"context"
	"fmt"
	"testing"

	"github.com/msp-tools/autoimport/sinks/email/emailtest"
)

// BenchmarkSendWelcome is one welcome over STARTTLS with AUTH PLAIN to the
// loopback fake: a new connection, TLS handshake, AUTH and DATA per send.
func BenchmarkSendWelcome(b *testing.B) {
	s := emailtest.NewServer(b, emailtest.Options{})
	m, err := New(configFor(s))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := m.SendWelcome(ctx, welcome(fmt.Sprintf("user%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	c := s.Counts()
	if c.Accepted != int64(i) || c.Connections != int64(i) {
		b.Fatalf("%d sends, counts %+v", i, c)
	}
	b.ReportMetric(float64(c.Connections)/float64(i), "conns/email")
}

// BenchmarkRender is composing one welcome: checks and the three templates.
func BenchmarkRender(b *testing.B) {
	m, err := New(Config{Host: "smtp.example.com", Username: "u", Password: "p", From: "it@msp.example"})
	if err != nil {
		b.Fatal(err)
	}
	w := welcome("jdoe")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.compose(w); err != nil {
			b.Fatal(err)
		}
	}
}
