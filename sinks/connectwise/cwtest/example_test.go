package cwtest_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/connectwise"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
)

func ExampleNewServer() {
	srv := cwtest.NewServer(cwtest.Options{})
	defer srv.Close()
	srv.AddCompany(250, "Acme", "Acme Ltd")
	srv.Generate(250, 2500, 1)

	c, err := connectwise.New(connectwise.Config{
		URL: srv.URL, CompanyID: srv.CompanyID, PublicKey: srv.PublicKey, PrivateKey: srv.PrivateKey,
		ClientID: srv.ClientID, Rate: "1000/s", Transport: srv.Client().Transport,
	})
	if err != nil {
		panic(err)
	}
	ix, err := c.Index(context.Background(), sinks.PSAScope{Customer: "acme", CompanyID: "250"})
	if err != nil {
		panic(err)
	}
	fmt.Println(ix.Len(), "contacts in", srv.Count(cwtest.KindListContacts), "pages")
	// Output: 2500 contacts in 3 pages
}
