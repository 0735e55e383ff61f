package email_test

import (
	"context"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/email"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
)

// A welcome sent over STARTTLS with AUTH PLAIN to the in-process fake, as
// the sandbox wires it.
func Example() {
	relay, err := emailtest.Start(emailtest.Options{})
	if err != nil {
		panic(err)
	}
	defer relay.Close()

	mailer, err := email.New(email.Config{
		Host: relay.Host(), Port: relay.Port(), TLS: email.TLSStartTLS,
		Username: relay.Username(), Password: relay.Password(),
		From: "Acme IT <it@msp.example>", RootCAs: relay.CertPool(), Timeout: 10 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	id := email.MessageID("acme", "ad:6f1c")
	err = mailer.SendWelcome(context.Background(), sinks.Welcome{
		Customer: "acme", CustomerName: "Acme Corp", To: "jane.doe@acme.example",
		DisplayName: "Jane Doe", Username: "jdoe",
		EnrollmentURL: "https://reset.msp.example/enrol?c=acme", MessageID: id,
	})
	if err != nil {
		panic(err)
	}
	m := relay.WithMessageID(id)[0]
	fmt.Println(m.To)
	fmt.Println(m.Subject)
	fmt.Println(m.MessageID)
	fmt.Println(relay.Counts().StartTLS, relay.Counts().AuthOK, relay.Count())
	// Output:
	// "Jane Doe" <jane.doe@acme.example>
	// Acme Corp: set up your password self-service
	// <welcome.74764ac0798a10c851692683@autoimport.invalid>
	// 1 1 1
}
