package itglue_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
)

// Index a customer's organization once, then match before creating.
func Example() {
	srv := itgluetest.NewServer(itgluetest.Options{APIKey: "ITG.example"})
	defer srv.Close()
	srv.AddPassword(itgluetest.Password{OrganizationID: 7, Name: "Jane Doe", Username: "CORP\\jdoe", Value: "x"}, "Active Directory")

	vault, err := itglue.New(itglue.Config{URL: srv.URL, APIKey: srv.APIKey})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	scope := sinks.VaultScope{Customer: "acme", Container: "7"}
	ix, err := vault.Index(ctx, scope)
	if err != nil {
		panic(err)
	}
	for _, sam := range []string{"jdoe", "jroe"} {
		id := sinks.Identity{Source: "ad", SAMAccountName: sam, NetBIOSDomain: "CORP"}
		m := ix.Match(id)
		if m.Outcome == sinks.NoMatch {
			e, err := vault.Create(ctx, scope, sinks.NewVaultEntry{Name: sam + " (Active Directory)", Username: sam, Category: sinks.CategoryFor("ad")})
			if err != nil {
				panic(err)
			}
			ix.Add(e)
		}
		fmt.Println(sam, m.Outcome)
	}
	fmt.Println("creates:", srv.Count(itgluetest.KindCreatePassword), "list pages:", srv.Count(itgluetest.KindListPasswords))
	// Output:
	// jdoe match
	// jroe none
	// creates: 1 list pages: 1
}
