package ad

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// An entry a read cannot take in is kept as a problem: CopyAccounts
// reports it as an entry error, and the next read is full.
func TestProblemsAreReportedAndForceAFullRead(t *testing.T) {
	ctx := context.Background()
	src, err := New(Config{Customer: "acme", URL: "ldaps://dc.invalid", BindDN: "svc", BindPassword: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	dom, _ := ParseSID("S-1-5-21-1-2-3")
	tok := syncToken{Version: tokenVersion, Mode: modeDirSync, Cookie: []byte("c"),
		Domain: tokenDomain{BaseDN: "DC=corp,DC=example,DC=test", RootDN: "DC=corp,DC=example,DC=test", NetBIOS: "CORP", SID: dom.String(), RootSID: dom.String()}}
	sel := sources.Selection{Admins: true}
	copies := &sourcestest.Copies{}
	full := newChangeSet(true)
	da := rawEntry("<GUID=544738d370493744831cc32916efb1a7>;CN=Domain Admins,CN=Users,DC=corp,DC=example,DC=test",
		attribute("objectClass", "top", "group"), attribute("objectSid", string(dom.WithRID(512).Bytes())))
	for _, e := range []*ldap.Entry{da} {
		d, eerr := decodeEntry(e, true)
		if eerr != nil {
			t.Fatal(eerr)
		}
		full.add(d, false)
	}
	apply := func(d sources.CopyDelta, tok syncToken) {
		t.Helper()
		d.State.Token, _ = json.Marshal(tok)
		d.State.FullAt, d.State.Selection = time.Now(), src.selectionDigest(sel)
		if err := copies.ApplyCopy(ctx, "acme", copySource, d); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := full.fullDelta()
	if err != nil {
		t.Fatal(err)
	}
	apply(fd, tok)

	cs := newChangeSet(false)
	d, eerr := decodeEntry(rawEntry(da.DN, attribute("member;range=1-1", "<GUID=nothex>;CN=Someone,DC=corp,DC=example,DC=test")), true)
	if eerr != nil {
		t.Fatal(eerr)
	}
	cs.add(d, false)
	delta, err := cs.incrementalDelta(ctx, copies, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok.Problems = len(cs.problems) > 0
	apply(delta, tok)

	state, _ := copies.CopyState(ctx, "acme", copySource)
	if _, reason := src.fullReason(state, src.selectionDigest(sel), sources.ReadOptions{}, time.Now()); reason != "the last read met entries it could not decode" {
		t.Errorf("next read: %q", reason)
	}
	var got *sources.EntryError
	for _, err := range src.CopyAccounts(ctx, copies, "acme", sel) {
		if !errors.As(err, &got) && err != nil {
			t.Fatal(err)
		}
	}
	if got == nil || !strings.HasPrefix(got.Entry, "CN=Domain Admins,") || !strings.Contains(got.Reason, `member value "<GUID=nothex>`) {
		t.Errorf("entry error %+v", got)
	}
}
