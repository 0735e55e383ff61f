package itglue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/itglue"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
)

func TestOrganizationsAndCheck(t *testing.T) {
	srv := startServer(t, itgluetest.Options{})
	srv.AddOrganization(7, "Acme")
	srv.AddOrganization(8, "Happy Frog")
	srv.PutOrganization(itgluetest.Organization{ID: 9, Name: "Globex", PSAID: "250", PSAType: "manage"})
	c := newClient(t, srv, func(c *itglue.Config) { c.PageSize = 2 })
	ctx := context.Background()
	all, err := c.Organizations(ctx, "")
	if err != nil || len(all) != 3 || all[1].Name != "Happy Frog" || all[1].ID != "8" || all[1].Type != "Customer" {
		t.Fatalf("%+v, %v", all, err)
	}
	one, err := c.Organizations(ctx, "happy frog")
	if err != nil || len(one) != 1 || one[0].ID != "8" {
		t.Fatalf("%+v, %v", one, err)
	}
	byPSA, err := c.OrganizationsByPSA(ctx, "manage", "250")
	if err != nil || len(byPSA) != 1 || byPSA[0].ID != "9" {
		t.Fatalf("by PSA: %+v, %v", byPSA, err)
	}
	if none, err := c.OrganizationsByPSA(ctx, "autotask", "250"); err != nil || len(none) != 0 {
		t.Fatalf("other PSA type: %+v, %v", none, err)
	}
	if _, err := c.OrganizationsByPSA(ctx, "", "250"); err == nil {
		t.Fatal("a PSA id without its type was sent")
	}
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, srv, func(c *itglue.Config) { c.APIKey = "ITG.bad" })
	if err := bad.Check(ctx); err == nil || !strings.Contains(err.Error(), "IT Glue: check") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("check with a bad key: %v", err)
	}
}

func FuzzDecodeOrganizations(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"2","type":"organizations","attributes":{"name":"Happy Frog","organization-type-name":"Customer","short-name":"happy","quick-notes":null}}],"meta":{"next-page":null}}`))
	f.Add([]byte(`{"data":[{"id":3}],"meta":{"next-page":2}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		orgs, next, err := itglue.DecodeOrganizations(body)
		if err != nil {
			return
		}
		if next < 0 {
			t.Fatal("negative next page")
		}
		for _, o := range orgs {
			if o.ID == "" {
				t.Fatal("organization without id")
			}
		}
	})
}
