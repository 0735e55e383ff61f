package connect_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/msp-tools/autoimport/cmd/internal/connect"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// The AD source tells the import which account autoimport binds as, and
// the rotation's directory refuses that account however the import
// recorded it: its status says it is not rotated here, and why.
func TestTheBindAccountIsNotRotatedHere(t *testing.T) {
	for _, present := range []bool{true, false} {
		dir := adtest.Generate(9, 5)
		var svcGUID string
		if present {
			svc := dir.AddUser(adtest.User{Parent: dir.Users(), SAM: "svc-import", CN: "svc-import"})
			svcGUID = dir.GUID(svc.DN)
		}
		other := dir.AddUser(adtest.User{Parent: dir.Users(), SAM: "adm-jane", CN: "Jane Admin"})
		srv := adtest.NewServer(t, adtest.Options{Directory: dir, LDAPS: true})
		ca := filepath.Join(t.TempDir(), "dc.pem")
		if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TEST_BIND_PASSWORD", srv.Password())
		c := jobs.Customer{ID: "acme", Sources: jobs.CustomerSources{AD: &jobs.ADSource{URL: srv.URL(), CAFile: ca, BindDN: `CORP\svc-import`,
			BindPassword: "env:TEST_BIND_PASSWORD", BaseDN: dir.BaseDN}}}
		conn, err := (&connect.Connector{}).Connect(context.Background(), &jobs.Tenant{Customers: []jobs.Customer{c}}, c)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		b, err := conn.AD.(interface {
			BindAccount(context.Context) (jobs.BindAccount, error)
		}).BindAccount(ctx)
		switch {
		case present && (err != nil || b.ObjectGUID != svcGUID || b.Username != "svc-import"):
			t.Fatalf("bind account: %+v, %v; want objectGUID %s", b, err, svcGUID)
		case !present && !errors.Is(err, jobs.ErrNotFound):
			t.Fatalf("bind account not in the directory: %+v, %v; want ErrNotFound", b, err)
		}
		d := conn.Directories["ad"]
		if present {
			st, err := d.Status(ctx, jobs.ImportedAccount{Source: "ad", SourceID: svcGUID, Username: "svc-import"})
			if err != nil || st.NotHere != jobs.ReasonBindAccount || !st.Exists {
				t.Fatalf("the bind account's status: %+v, %v", st, err)
			}
		}
		st, err := d.Status(ctx, jobs.ImportedAccount{Source: "ad", SourceID: dir.GUID(other.DN), Username: "adm-jane"})
		if err != nil || st.NotHere != "" || !st.Enabled {
			t.Fatalf("another administrator's status (bind account present %v): %+v, %v", present, st, err)
		}
	}
}
