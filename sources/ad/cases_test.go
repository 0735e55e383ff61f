package ad_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
)

// want is the expected outcome for one named account.
type want struct {
	typ sources.AccountType
	// skip is a substring of SkipReason; "" means a candidate.
	skip string
	// reason is a substring of TypeReason.
	reason string
	// selectedBy lists substrings expected among SelectedBy.
	selectedBy []string
}

// classificationCase is one selection against the shared fixture
// (adtest.FixtureUsers; internal/sambatest/fixtures.ldif holds the same).
type classificationCase struct {
	name string
	// sel is built from the base DN, since the fake and Samba may differ.
	sel func(base string) sources.Selection
	// want maps sAMAccountName (lower case) to its outcome.
	want map[string]want
	// absent must not be yielded.
	absent []string
}

func rel(base, dn string) string { return dn + "," + base }

var classificationCases = []classificationCase{
	{
		name: "group with nested members three deep",
		sel: func(b string) sources.Selection {
			return sources.Selection{Groups: []string{rel(b, adtest.GroupAllStaff)}}
		},
		want: map[string]want{
			"alice": {typ: sources.EndUser, selectedBy: []string{"All Staff"}},
			"erin":  {typ: sources.EndUser, selectedBy: []string{"All Staff"}},
			"bob":   {typ: sources.Admin, reason: "member of Domain Admins"},
			"carol": {typ: sources.Admin, reason: "member of Domain Admins via Tier2 Ops"},
			"frank": {typ: sources.EndUser, skip: "disabled (userAccountControl 514)"},
		},
		absent: []string{"dave", "grace", "heidi", "ivan", "administrator", "ws01$"},
	},
	{
		name: "innermost group only",
		sel: func(b string) sources.Selection {
			return sources.Selection{Groups: []string{rel(b, adtest.GroupSalesEMEA)}}
		},
		want:   map[string]want{"erin": {typ: sources.EndUser}},
		absent: []string{"alice", "bob", "carol", "frank"},
	},
	{
		name: "group by sAMAccountName",
		sel:  func(string) sources.Selection { return sources.Selection{Groups: []string{"Sales Team"}} },
		want: map[string]want{
			"alice": {typ: sources.EndUser, selectedBy: []string{"Sales Team"}},
			"erin":  {typ: sources.EndUser},
			"frank": {typ: sources.EndUser, skip: "disabled"},
		},
		absent: []string{"bob", "carol", "heidi"},
	},
	{
		name: "privileged members as admin candidates",
		sel:  func(string) sources.Selection { return sources.Selection{Admins: true} },
		want: map[string]want{
			"bob":           {typ: sources.Admin, reason: "member of Domain Admins", selectedBy: []string{"privileged groups"}},
			"carol":         {typ: sources.Admin, reason: "member of Domain Admins via Tier2 Ops"},
			"dave":          {typ: sources.Admin, reason: "member of Domain Admins via Tier3 Ops > Tier2 Ops"},
			"grace":         {typ: sources.Admin, reason: "member of Domain Admins", skip: "disabled (userAccountControl 514)"},
			"ivan":          {typ: sources.Admin, reason: "member of Backup Operators"},
			"administrator": {typ: sources.Admin, reason: "member of Domain Admins"},
		},
		absent: []string{"alice", "erin", "frank", "heidi"},
	},
	{
		name: "OU subtree with a computer and a contact",
		sel: func(b string) sources.Selection {
			return sources.Selection{OUs: []string{rel(b, adtest.OUSales)}}
		},
		want: map[string]want{
			"alice": {typ: sources.EndUser, selectedBy: []string{"OU=Sales"}},
			"erin":  {typ: sources.EndUser},
			"frank": {typ: sources.EndUser, skip: "disabled"},
			"ws01$": {skip: "computer account"},
		},
		absent: []string{"bob", "carol", "heidi", "dave"},
	},
	{
		name: "Domain Users through primaryGroupID",
		sel:  func(string) sources.Selection { return sources.Selection{Builtin: []string{"Domain Users"}} },
		want: map[string]want{
			"heidi":         {typ: sources.EndUser, selectedBy: []string{"Domain Users"}},
			"alice":         {typ: sources.EndUser},
			"bob":           {typ: sources.Admin, reason: "Domain Admins"},
			"dave":          {typ: sources.Admin, reason: "via Tier3 Ops > Tier2 Ops"},
			"ivan":          {typ: sources.Admin, reason: "Backup Operators"},
			"administrator": {typ: sources.Admin},
		},
		absent: []string{"ws01$"},
	},
	{
		name: "group and OU overlapping are yielded once with both",
		sel: func(b string) sources.Selection {
			return sources.Selection{Groups: []string{rel(b, adtest.GroupAllStaff)}, OUs: []string{rel(b, adtest.OUSales), rel(b, adtest.OUStaff)}}
		},
		want: map[string]want{
			"alice": {typ: sources.EndUser, selectedBy: []string{"All Staff", "OU=Sales", "OU=Staff"}},
			"erin":  {typ: sources.EndUser, selectedBy: []string{"All Staff", "OU=Sales"}},
			"heidi": {typ: sources.EndUser, selectedBy: []string{"OU=Staff"}},
			"bob":   {typ: sources.Admin, selectedBy: []string{"All Staff", "OU=Staff"}},
			"ws01$": {skip: "computer account"},
		},
		absent: []string{"dave", "grace", "ivan"},
	},
	{
		name: "disabled included on request",
		sel: func(b string) sources.Selection {
			return sources.Selection{Groups: []string{rel(b, adtest.GroupSalesTeam)}, IncludeDisabled: true}
		},
		want: map[string]want{
			"frank": {typ: sources.EndUser},
			"alice": {typ: sources.EndUser},
			"erin":  {typ: sources.EndUser},
		},
	},
}

// collect reads every account of sel, failing the test on a stream error
// and on any account yielded twice.
func collect(t *testing.T, src sources.Source, sel sources.Selection) (map[string]sources.Account, []*sources.EntryError) {
	t.Helper()
	got := map[string]sources.Account{}
	ids := map[string]bool{}
	var bad []*sources.EntryError
	for acc, err := range src.Accounts(context.Background(), sel) {
		if err != nil {
			var ee *sources.EntryError
			if errors.As(err, &ee) {
				bad = append(bad, ee)
				continue
			}
			t.Fatalf("Accounts: %v", err)
		}
		if ids[acc.ID] {
			t.Errorf("account %s (%s) yielded twice", acc.Username, acc.ID)
		}
		ids[acc.ID] = true
		key := strings.ToLower(acc.Username)
		if key == "" {
			key = acc.DN
		}
		got[key] = acc
	}
	return got, bad
}

// runClassificationCases runs the shared table against a source whose
// directory holds the fixture under base.
func runClassificationCases(t *testing.T, src sources.Source, base, netbios string) {
	for _, tc := range classificationCases {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := collect(t, src, tc.sel(base))
			if len(bad) > 0 {
				t.Errorf("unexpected entry errors: %v", bad)
			}
			for sam, w := range tc.want {
				acc, ok := got[sam]
				if !ok {
					t.Errorf("%s: not yielded", sam)
					continue
				}
				if w.skip == "" && acc.SkipReason != "" {
					t.Errorf("%s: skipped (%s), want a candidate", sam, acc.SkipReason)
				}
				if w.skip != "" && !strings.Contains(acc.SkipReason, w.skip) {
					t.Errorf("%s: SkipReason %q, want it to contain %q", sam, acc.SkipReason, w.skip)
				}
				if w.typ != "" && acc.Type != w.typ {
					t.Errorf("%s: Type %s (%s), want %s", sam, acc.Type, acc.TypeReason, w.typ)
				}
				if w.reason != "" && !strings.Contains(acc.TypeReason, w.reason) {
					t.Errorf("%s: TypeReason %q, want it to contain %q", sam, acc.TypeReason, w.reason)
				}
				for _, sb := range w.selectedBy {
					if !slices.ContainsFunc(acc.SelectedBy, func(s string) bool { return strings.Contains(s, sb) }) {
						t.Errorf("%s: SelectedBy %q lacks %q", sam, acc.SelectedBy, sb)
					}
				}
				if acc.Source != sources.KindAD || acc.DN == "" {
					t.Errorf("%s: Source %q DN %q", sam, acc.Source, acc.DN)
				}
				if !strings.HasSuffix(sam, "$") {
					checkIdentity(t, acc, netbios)
				}
			}
			for _, sam := range tc.absent {
				if acc, ok := got[sam]; ok {
					t.Errorf("%s: yielded (%+v), want absent", sam, acc)
				}
			}
		})
	}
}

// checkIdentity verifies the fields every user account carries.
func checkIdentity(t *testing.T, acc sources.Account, netbios string) {
	t.Helper()
	raw, err := ad.GUIDBytes(acc.ID)
	if err != nil {
		t.Errorf("%s: ID %q is not a GUID: %v", acc.Username, acc.ID, err)
		return
	}
	if back, _ := ad.GUIDString(raw); back != acc.ID {
		t.Errorf("%s: ID %q does not round-trip (%q)", acc.Username, acc.ID, back)
	}
	if acc.ImmutableID == "" {
		t.Errorf("%s: no ImmutableID", acc.Username)
	}
	if !strings.EqualFold(acc.Domain, netbios) {
		t.Errorf("%s: Domain %q, want %q", acc.Username, acc.Domain, netbios)
	}
	if acc.Enabled == strings.Contains(acc.SkipReason, "disabled") && acc.SkipReason != "" {
		t.Errorf("%s: Enabled %v with SkipReason %q", acc.Username, acc.Enabled, acc.SkipReason)
	}
}
