package adtest_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// A fake DC with the fixture and 500 generated users, read by the real
// reader: the administrators among the fixture's Tier3 Ops members.
func ExampleStart() {
	srv, err := adtest.Start(adtest.Options{Directory: adtest.Generate(1, 500), LDAPS: true})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	src, err := ad.New(srv.Config("acme"))
	if err != nil {
		panic(err)
	}
	base := srv.Directory().BaseDN
	for acc, err := range src.Accounts(context.Background(), sources.Selection{Groups: []string{adtest.GroupTier3Ops + "," + base}}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(acc.Username, acc.Type, acc.TypeReason)
	}
	fmt.Println("searches:", srv.Stats().Searches > 0)
	// Output:
	// dave admin member of Domain Admins via Tier3 Ops > Tier2 Ops
	// searches: true
}
