package sinks

import (
	"fmt"
	"strings"
	"testing"
)

func TestVaultMatch(t *testing.T) {
	ad := Identity{Source: "ad", SAMAccountName: "jdoe", UPN: "jane.doe@corp.example", NetBIOSDomain: "CORP", DisplayName: "Jane Doe"}
	m365 := Identity{Source: "m365", UPN: "jane.doe@acme.example", DisplayName: "Jane Doe"}
	local := Identity{Source: "local", SAMAccountName: "Administrator"}
	tests := []struct {
		name    string
		id      Identity
		entries []VaultEntry
		want    MatchOutcome
		ref     string   // the matched entry (Matched)
		others  []string // the candidates (Ambiguous, PossibleDuplicate)
	}{
		{"empty index", ad, nil, NoMatch, "", nil},
		{"AD sAMAccountName", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Active Directory"}}, Matched, "1", nil},
		{"AD mixed case username and category", ad, []VaultEntry{{Ref: "1", Username: "JDoe", Category: "active DIRECTORY"}}, Matched, "1", nil},
		{"AD surrounding spaces", ad, []VaultEntry{{Ref: "1", Username: " jdoe ", Category: " Active Directory "}}, Matched, "1", nil},
		{"AD domain-qualified", ad, []VaultEntry{{Ref: "1", Username: `CORP\jdoe`, Category: "Active Directory"}}, Matched, "1", nil},
		{"AD domain-qualified mixed case", ad, []VaultEntry{{Ref: "1", Username: `corp\JDOE`, Category: "Active Directory"}}, Matched, "1", nil},
		{"AD other domain is no match", ad, []VaultEntry{{Ref: "1", Username: `OTHER\jdoe`, Category: "Active Directory"}}, NoMatch, "", nil},
		{"AD UPN", ad, []VaultEntry{{Ref: "1", Username: "Jane.Doe@corp.example", Category: "Active Directory"}}, Matched, "1", nil},
		{"AD UPN prefix is not an AD name", ad, []VaultEntry{{Ref: "1", Username: "jane.doe", Category: "Active Directory"}}, NoMatch, "", nil},
		{"AD entry in an M365 category", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Office 365"}}, NoMatch, "", nil},
		{"AD missing category", ad, []VaultEntry{{Ref: "1", Name: "Jane", Username: "jdoe"}}, PossibleDuplicate, "", []string{"1"}},
		{"AD blank category", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "  "}}, PossibleDuplicate, "", []string{"1"}},
		{"AD categorised wins over uncategorised", ad, []VaultEntry{{Ref: "1", Username: "jdoe"}, {Ref: "2", Username: "jdoe", Category: "Active Directory"}}, Matched, "2", nil},
		{"AD two candidates", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Active Directory"}, {Ref: "2", Username: `CORP\jdoe`, Category: "Active Directory"}}, Ambiguous, "", []string{"1", "2"}},
		{"AD two candidates same username", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Active Directory"}, {Ref: "2", Username: "JDOE", Category: "Active Directory"}}, Ambiguous, "", []string{"1", "2"}},
		{"AD same ref twice counts once", ad, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Active Directory"}, {Ref: "1", Username: "jdoe", Category: "Active Directory"}}, Matched, "1", nil},
		{"AD without domain has no qualified name", Identity{Source: "ad", SAMAccountName: "jdoe"}, []VaultEntry{{Ref: "1", Username: `CORP\jdoe`, Category: "Active Directory"}}, NoMatch, "", nil},
		{"M365 UPN", m365, []VaultEntry{{Ref: "1", Username: "jane.doe@acme.example", Category: "Office 365"}}, Matched, "1", nil},
		{"M365 UPN mixed case", m365, []VaultEntry{{Ref: "1", Username: "JANE.DOE@ACME.EXAMPLE", Category: "microsoft 365"}}, Matched, "1", nil},
		{"M365 UPN prefix", m365, []VaultEntry{{Ref: "1", Username: "Jane.Doe", Category: "Azure AD"}}, Matched, "1", nil},
		{"M365 prefix of another domain is no match", m365, []VaultEntry{{Ref: "1", Username: "jane.doe@other.example", Category: "Office 365"}}, NoMatch, "", nil},
		{"M365 entry in the AD category", m365, []VaultEntry{{Ref: "1", Username: "jane.doe@acme.example", Category: "Active Directory"}}, NoMatch, "", nil},
		{"M365 missing category", m365, []VaultEntry{{Ref: "1", Username: "jane.doe"}}, PossibleDuplicate, "", []string{"1"}},
		{"M365 UPN and prefix are two candidates", m365, []VaultEntry{{Ref: "1", Username: "jane.doe@acme.example", Category: "Office 365"}, {Ref: "2", Username: "jane.doe", Category: "Azure Active Directory"}}, Ambiguous, "", []string{"1", "2"}},
		{"local account", local, []VaultEntry{{Ref: "1", Username: "administrator", Category: "Local Account"}}, Matched, "1", nil},
		{"local account in the AD category", local, []VaultEntry{{Ref: "1", Username: "administrator", Category: "Active Directory"}}, NoMatch, "", nil},
		{"unknown source matches nothing", Identity{Source: "ldap", SAMAccountName: "jdoe"}, []VaultEntry{{Ref: "1", Username: "jdoe", Category: "Active Directory"}}, NoMatch, "", nil},
		{"empty username never matches an identity without names", Identity{Source: "ad"}, []VaultEntry{{Ref: "1", Username: "", Category: "Active Directory"}}, NoMatch, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewVaultIndex(tt.entries).Match(tt.id)
			if got.Outcome != tt.want {
				t.Fatalf("outcome %q, want %q (%s)", got.Outcome, tt.want, got.Reason)
			}
			if got.Reason == "" {
				t.Error("no reason given")
			}
			if tt.want == Matched && got.Entry.Ref != tt.ref {
				t.Errorf("matched %q, want %q", got.Entry.Ref, tt.ref)
			}
			var others []string
			for _, e := range got.Others {
				others = append(others, e.Ref)
				if !strings.Contains(got.Reason, e.Ref) {
					t.Errorf("reason %q does not name entry %s", got.Reason, e.Ref)
				}
			}
			if strings.Join(others, ",") != strings.Join(tt.others, ",") {
				t.Errorf("others %v, want %v", others, tt.others)
			}
		})
	}
}

// TestVaultMatchEachCategory checks every accepted category name of every
// source, and that no other source's names are accepted.
func TestVaultMatchEachCategory(t *testing.T) {
	ids := map[string]Identity{
		"ad":    {Source: "ad", SAMAccountName: "jdoe"},
		"m365":  {Source: "m365", UPN: "jdoe@acme.example"},
		"local": {Source: "local", SAMAccountName: "jdoe"},
	}
	want := map[string][]string{
		"ad":    {"Active Directory"},
		"m365":  {"Office 365", "Microsoft 365", "Azure AD", "Azure Active Directory"},
		"local": {"Local Account"},
	}
	for source, id := range ids {
		if got := strings.Join(CategoryNames(source), "|"); got != strings.Join(want[source], "|") {
			t.Errorf("CategoryNames(%q) = %q", source, got)
		}
		if CategoryFor(source) != want[source][0] {
			t.Errorf("CategoryFor(%q) = %q", source, CategoryFor(source))
		}
		for catSource, names := range want {
			for _, cat := range names {
				t.Run(source+"/"+cat, func(t *testing.T) {
					got := NewVaultIndex([]VaultEntry{{Ref: "7", Username: "jdoe", Category: cat}}).Match(id)
					wantOutcome := NoMatch
					if catSource == source {
						wantOutcome = Matched
					}
					if got.Outcome != wantOutcome {
						t.Fatalf("outcome %q, want %q", got.Outcome, wantOutcome)
					}
				})
			}
		}
	}
	if CategoryFor("other") != "" || CategoryNames("other") != nil {
		t.Error("an unknown source has categories")
	}
}

func TestVaultIndexAdd(t *testing.T) {
	ix := NewVaultIndex(nil)
	id := Identity{Source: "ad", SAMAccountName: "jdoe"}
	if ix.Match(id).Outcome != NoMatch || ix.Len() != 0 {
		t.Fatal("empty index matched")
	}
	ix.Add(VaultEntry{Ref: "9", Username: "JDOE", Category: "Active Directory"})
	if m := ix.Match(id); m.Outcome != Matched || m.Entry.Ref != "9" || ix.Len() != 1 {
		t.Fatalf("after Add: %+v, len %d", m, ix.Len())
	}
}

func TestContactMatch(t *testing.T) {
	jane := Contact{Ref: "1", FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example"}
	tests := []struct {
		name               string
		contacts           []Contact
		first, last, email string
		want               MatchOutcome
		ref                string
		others             []string
		reason             string
	}{
		{"empty", nil, "Jane", "Doe", "jane@acme.example", NoMatch, "", nil, ""},
		{"email", []Contact{jane}, "Janet", "Other", "jane@acme.example", Matched, "1", nil, "email"},
		{"email mixed case and spaces", []Contact{jane}, "", "", "  JANE@Acme.Example ", Matched, "1", nil, "email"},
		{"email first, name ignored", []Contact{jane, {Ref: "2", FirstName: "Jane", LastName: "Doe", Email: "other@acme.example"}}, "Jane", "Doe", "other@acme.example", Matched, "2", nil, "email"},
		{"name when email is unknown", []Contact{jane}, "jane", "DOE", "new@acme.example", Matched, "1", nil, "name"},
		{"name when no email given", []Contact{jane}, "Jane", "Doe", "", Matched, "1", nil, "name"},
		{"name needs both parts", []Contact{{Ref: "3", FirstName: "Jane"}}, "Jane", "", "", NoMatch, "", nil, ""},
		{"first name alone is no match", []Contact{jane}, "Jane", "Smith", "", NoMatch, "", nil, ""},
		{"two by email", []Contact{jane, {Ref: "2", FirstName: "J", LastName: "D", Email: "Jane@acme.example"}}, "Jane", "Doe", "jane@acme.example", Ambiguous, "", []string{"1", "2"}, "email"},
		{"two by name", []Contact{jane, {Ref: "2", FirstName: "Jane", LastName: "Doe"}}, "Jane", "Doe", "new@acme.example", Ambiguous, "", []string{"1", "2"}, "name"},
		{"one by email beats two by name", []Contact{jane, {Ref: "2", FirstName: "Jane", LastName: "Doe"}}, "Jane", "Doe", "jane@acme.example", Matched, "1", nil, "email"},
		{"no email and no name", []Contact{jane}, "", "", "", NoMatch, "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewContactIndex(tt.contacts)
			if ix.Len() != len(tt.contacts) {
				t.Fatalf("Len %d, want %d", ix.Len(), len(tt.contacts))
			}
			got := ix.Match(tt.first, tt.last, tt.email)
			if got.Outcome != tt.want {
				t.Fatalf("outcome %q, want %q (%s)", got.Outcome, tt.want, got.Reason)
			}
			if tt.want == Matched && got.Contact.Ref != tt.ref {
				t.Errorf("matched %q, want %q", got.Contact.Ref, tt.ref)
			}
			var others []string
			for _, c := range got.Others {
				others = append(others, c.Ref)
			}
			if strings.Join(others, ",") != strings.Join(tt.others, ",") {
				t.Errorf("others %v, want %v", others, tt.others)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", got.Reason, tt.reason)
			}
		})
	}
}

// Entries and contacts sharing a key are found in the order they were
// indexed, whether they came in the first listing or were added later.
func TestIndexesKeepOrderUnderOneKey(t *testing.T) {
	var es []VaultEntry
	for i := range 5 {
		es = append(es, VaultEntry{Ref: fmt.Sprint(i), Username: "Jane", Category: "Active Directory"}, VaultEntry{Ref: fmt.Sprint("other", i), Username: fmt.Sprint("u", i)})
	}
	ix := NewVaultIndex(es)
	ix.Add(VaultEntry{Ref: "5", Username: " jane ", Category: "Active Directory"})
	var zero VaultIndex
	if m := zero.Match(Identity{Source: "ad", SAMAccountName: "jane"}); m.Outcome != NoMatch || zero.Len() != 0 {
		t.Fatalf("zero index: %+v", m)
	}
	m := ix.Match(Identity{Source: "ad", SAMAccountName: "JANE"})
	if m.Outcome != Ambiguous || ix.Len() != 11 || !strings.Contains(m.Reason, "6 entries match (0, 1, 2, 3, 4, 5)") {
		t.Fatalf("%d entries: %+v", ix.Len(), m)
	}
	if m := ix.Match(Identity{Source: "ad", SAMAccountName: "u3"}); m.Outcome != PossibleDuplicate || m.Others[0].Ref != "other3" {
		t.Fatalf("u3: %+v", m)
	}

	cs := NewContactIndex([]Contact{{Ref: "a", FirstName: "Jane", LastName: "Doe"}, {Ref: "b", FirstName: "jane", LastName: "DOE", Email: "j@x.test"}})
	cs.Add(Contact{Ref: "c", FirstName: "Jane", LastName: "Doe"})
	if m := cs.Match("Jane", "Doe", ""); m.Outcome != Ambiguous || !strings.Contains(m.Reason, "(a, b, c)") || cs.Len() != 3 {
		t.Fatalf("by name: %+v", m)
	}
	if m := cs.Match("Jane", "Doe", "J@X.test"); m.Outcome != Matched || m.Contact.Ref != "b" {
		t.Fatalf("by email: %+v", m)
	}
}
