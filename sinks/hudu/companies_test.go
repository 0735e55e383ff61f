package hudu_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/hudu"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
)

func TestCompaniesAndCheck(t *testing.T) {
	srv := startServer(t, hudutest.Options{})
	srv.AddCompany(7, "Acme")
	srv.AddCompany(8, "Globex")
	srv.PutCompany(hudutest.Company{ID: 9, Name: "Initech", IDInIntegration: "250"})
	c := newClient(t, srv, func(c *hudu.Config) { c.PageSize = 2 })
	ctx := context.Background()
	all, err := c.Companies(ctx, "")
	if err != nil || len(all) != 3 || all[2].Name != "Initech" || all[2].ID != 9 || all[2].IDInIntegration != "250" {
		t.Fatalf("%+v, %v", all, err)
	}
	one, err := c.Companies(ctx, "globex")
	if err != nil || len(one) != 1 || one[0].ID != 8 {
		t.Fatalf("%+v, %v", one, err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, srv, func(c *hudu.Config) { c.APIKey = "bad" })
	if err := bad.Check(ctx); err == nil || !strings.Contains(err.Error(), "Hudu: check") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("check with a bad key: %v", err)
	}
}

func FuzzDecodeCompanies(f *testing.F) {
	f.Add([]byte(`{"companies":[{"id":7,"name":"Acme","id_in_integration":"250"}]}`))
	f.Add([]byte(`{"companies":[{"id":"8","name":null,"id_in_integration":250}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, err := hudu.DecodeCompanies(body)
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.ID <= 0 {
				t.Fatal("company without id")
			}
		}
	})
}
