package hudu_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
)

// Index a customer's company once, then match before creating.
func Example() {
	srv := hudutest.NewServer(hudutest.Options{})
	defer srv.Close()
	srv.AddPassword(hudutest.AssetPassword{CompanyID: 7, Name: "Jane Doe", Username: "jane@acme.example", Password: "x", PasswordType: "Office 365"})

	vault, err := hudu.New(hudu.Config{URL: srv.URL, APIKey: srv.APIKey})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	scope := sinks.VaultScope{Customer: "acme", Container: "7"}
	ix, err := vault.Index(ctx, scope)
	if err != nil {
		panic(err)
	}
	for _, upn := range []string{"Jane@acme.example", "john@acme.example"} {
		m := ix.Match(sinks.Identity{Source: "m365", UPN: upn})
		if m.Outcome == sinks.NoMatch {
			e, err := vault.Create(ctx, scope, sinks.NewVaultEntry{Name: upn + " (Microsoft 365)", Username: upn, Category: sinks.CategoryFor("m365")})
			if err != nil {
				panic(err)
			}
			ix.Add(e)
		}
		fmt.Println(upn, m.Outcome)
	}
	fmt.Println("creates:", srv.Count(hudutest.KindCreatePassword))
	// Output:
	// Jane@acme.example match
	// john@acme.example none
	// creates: 1
}
