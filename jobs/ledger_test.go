package jobs

import (
	"testing"
	"time"
)

func TestLedgerKeepsWhatAPassReads(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	rows := []ImportedAccount{
		{Source: "ad", SourceID: "g-1", Type: EndUser, Username: "jdoe", State: "active", Welcome: "sent", OptionsOrigin: "policy Std", ImportedAt: at,
			VaultIntegration: "IT Glue", VaultRef: "123", PSAIntegration: "ConnectWise PSA", PSARef: "77", SelfServe: true, M365Sync: true},
		{Source: "m365", SourceID: "m-1", Type: Admin, Username: "ga@acme.example", State: "missing", Welcome: "none", OptionsOrigin: "customer", ImportedAt: at, Rotation: true},
	}
	var shared stringTable
	l := newLedger(&shared)
	for _, r := range rows {
		l.add(r)
	}
	want := map[ledgerKey]imported{
		{"ad", "g-1"}: {typ: EndUser, username: "jdoe", state: "active", welcome: "sent", imported: "imported 2026-11-02 under policy Std",
			vaultIntegration: "IT Glue", vaultRef: "123", psaIntegration: "ConnectWise PSA", psaRef: "77", flags: Flags{SelfServe: true, M365Sync: true}},
		{"m365", "m-1"}: {typ: Admin, username: "ga@acme.example", state: "missing", welcome: "none", imported: "imported 2026-11-02 under customer", flags: Flags{Rotation: true}},
	}
	if l.len() != 2 {
		t.Fatalf("%d entries", l.len())
	}
	for k, w := range want {
		if got, ok := l.get(k); !ok || got != w {
			t.Errorf("%v:\n got %+v\nwant %+v", k, got, w)
		}
	}
	if _, ok := l.see(ledgerKey{"ad", "m-1"}); ok {
		t.Error("an id is found under the wrong source")
	}
	l.see(ledgerKey{"ad", "g-1"})
	var unseen []ledgerKey
	l.unseen(func(k ledgerKey, _ imported) { unseen = append(unseen, k) })
	if len(unseen) != 1 || unseen[0] != (ledgerKey{"m365", "m-1"}) {
		t.Errorf("unseen %v", unseen)
	}
}
