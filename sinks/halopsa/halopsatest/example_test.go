package halopsatest_test

import (
	"context"
	"fmt"

	"github.com/msp-tools/autoimport/sinks"
	"github.com/msp-tools/autoimport/sinks/halopsa"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
)

func ExampleNewServer() {
	srv := halopsatest.NewServer(halopsatest.Options{})
	defer srv.Close()
	srv.AddClient(12, "Acme")
	srv.Generate(12, 600, 1)

	c, err := halopsa.New(halopsa.Config{
		URL: srv.URL, Tenant: srv.Tenant, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Rate: "1000/s", Transport: srv.Client().Transport,
	})
	if err != nil {
		panic(err)
	}
	scope := sinks.PSAScope{Customer: "acme", CompanyID: "12"}
	ix, err := c.Index(context.Background(), scope)
	if err != nil {
		panic(err)
	}
	created, err := c.Create(context.Background(), scope, sinks.NewContact{FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"})
	if err != nil {
		panic(err)
	}
	fmt.Println(ix.Len(), "users;", "created", created.FirstName, created.LastName)
	// Output: 600 users; created Jane Doe
}
