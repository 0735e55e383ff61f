package ad_test

import (
	"testing"

	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// fakeSource starts a fake DC over LDAPS and returns a Source reading it.
func fakeSource(t testing.TB, dir *adtest.Directory, mod ...func(*ad.Config)) (*adtest.Server, *ad.Source) {
	t.Helper()
	srv := adtest.NewServer(t, adtest.Options{Directory: dir, LDAPS: true})
	cfg := ad.Config{Customer: "acme", URL: srv.URL(), CAPEM: srv.CAPEM(), BindDN: srv.BindDN(), BindPassword: srv.Password()}
	for _, m := range mod {
		m(&cfg)
	}
	src, err := ad.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv, src
}

func TestClassificationFake(t *testing.T) {
	dir := adtest.Generate(7, 50)
	_, src := fakeSource(t, dir)
	runClassificationCases(t, src, dir.BaseDN, dir.NetBIOS)
}
