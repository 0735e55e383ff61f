package autotasktest_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/autotask"
	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
)

func ExampleNewServer() {
	srv := autotasktest.NewServer(autotasktest.Options{})
	defer srv.Close()
	srv.AddCompany(123, "Acme")
	srv.Generate(123, 1200, 1)

	c, err := autotask.New(autotask.Config{
		ZoneURL: srv.ZoneURL(), UserName: srv.UserName, Secret: srv.Secret,
		IntegrationCode: srv.IntegrationCode, Rate: "1000/s", Transport: srv.Client().Transport,
	})
	if err != nil {
		panic(err)
	}
	scope := sinks.PSAScope{Customer: "acme", CompanyID: "123"}
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		panic(err)
	}
	fmt.Println(ix.Len(), "contacts in", srv.Count(autotasktest.KindQueryContacts), "pages")
	// Output: 1200 contacts in 3 pages
}
