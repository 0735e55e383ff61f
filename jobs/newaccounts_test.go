package jobs

import (
	"testing"

	"github.com/msp-tools/autoimport/sources"
)

func TestNewAccountsKeepEveryFieldAndSort(t *testing.T) {
	link := &Link{M365ID: "m-1", UPN: "zoé@acme.example", Kind: "hard", Licensed: true}
	accounts := []sources.Account{
		{Source: sources.KindM365, ID: "m-2", Username: "admin@acme.example", UPN: "admin@acme.example", Type: Admin, TypeReason: "holds Global Administrator"},
		{Source: sources.KindAD, ID: "g-1", Username: "Zoé", UPN: "zoé@acme.example", DisplayName: "Zoé Ünal", GivenName: "Zoé", Surname: "Ünal",
			Email: "zoe@acme.example", Domain: "ACME", ImmutableID: "AAAAAAAAAAAAAAAAAAAAAQ==", Type: EndUser, TypeReason: "member of Staff"},
		{Source: sources.KindAD, ID: "g-2", Username: "adam", Domain: "ACME", Type: EndUser, TypeReason: "member of Staff"},
		{Source: sources.KindAD, ID: "g-3"}, // every string empty
	}
	var shared stringTable
	n := &newAccounts{shared: &shared}
	for i, a := range accounts {
		var l *Link
		if i == 1 {
			l = link
		}
		n.add(a, l)
	}
	n.sort()
	want := []Candidate{NewCandidate(accounts[3], nil), NewCandidate(accounts[2], nil), NewCandidate(accounts[1], link), NewCandidate(accounts[0], nil)}
	if n.len() != len(want) {
		t.Fatalf("%d accounts", n.len())
	}
	for i, w := range want {
		if got := n.get(i); got != w {
			t.Errorf("account %d:\n got %+v\nwant %+v", i, got, w)
		}
		if n.typeOf(i) != w.Type {
			t.Errorf("account %d: type %q", i, n.typeOf(i))
		}
	}
	if len(shared.strs) != 8 { // ad, m365, end-user, admin, "", ACME, two reasons
		t.Errorf("shared strings %q", shared.strs)
	}
}
