package m365test_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// A fake tenant with generated users, read by the real source; the
// counters say what it cost.
func ExampleNewServer() {
	srv := m365test.NewServer(m365test.Options{})
	defer srv.Close()
	srv.Default().Generate(m365test.GenOptions{Seed: 1, Users: 2500, Guests: 10, Disabled: 5, Groups: 4, Admins: 3,
		ImmutableIDs: []string{"MyIRAFVEd2aImaq7zN3u/w=="}})

	src, err := m365.New(m365.Config{
		Customer: "acme", TenantID: srv.TenantID, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		LoginURL: srv.URL, GraphURL: srv.URL, Transport: srv.Client().Transport,
	})
	if err != nil {
		panic(err)
	}
	kinds := map[string]int{}
	for a, err := range src.Accounts(context.Background(), sources.Selection{Groups: []string{"All Staff"}}) {
		if err != nil {
			panic(err)
		}
		switch {
		case !a.Candidate():
			kinds["skipped: "+a.SkipReason]++
		case a.ImmutableID != "":
			kinds[string(a.Type)+" (hybrid)"]++
		default:
			kinds[string(a.Type)]++
		}
	}
	fmt.Println(kinds)
	fmt.Println("member pages:", srv.Count(m365test.KindGroupMembers), "token requests:", srv.Count(m365test.KindToken))
	// Output:
	// map[admin:2 admin (hybrid):1 end-user:2497]
	// member pages: 3 token requests: 1
}
