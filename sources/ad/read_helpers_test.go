package ad_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/sourcestest"
)

// outcome is everything a stream of accounts says, keyed so that two
// streams compare regardless of order.
type outcome struct {
	accounts map[string]sources.Account // by ID
	broken   map[string]string          // entry error reason by entry
	err      string                     // the error that ended the stream
}

func drain(seq iter.Seq2[sources.Account, error]) outcome {
	o := outcome{accounts: map[string]sources.Account{}, broken: map[string]string{}}
	for acc, err := range seq {
		var ee *sources.EntryError
		switch {
		case errors.As(err, &ee):
			o.broken[ee.Entry] = ee.Reason
		case err != nil:
			o.err = err.Error()
		default:
			if _, dup := o.accounts[acc.ID]; dup {
				o.err = "account " + acc.ID + " yielded twice"
			}
			acc.Changed = "" // DirSync does not carry whenChanged
			o.accounts[acc.ID] = acc
		}
	}
	return o
}

// diffOutcomes describes how the copy's outcome differs from the DC's.
func diffOutcomes(dc, copy outcome) []string {
	var out []string
	for id, a := range dc.accounts {
		b, ok := copy.accounts[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing from the copy: %s %s (%s, %q)", a.Username, a.DN, a.Type, a.SkipReason))
		case fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b):
			out = append(out, fmt.Sprintf("differs:\n  DC   %+v\n  copy %+v", a, b))
		}
	}
	for id, b := range copy.accounts {
		if _, ok := dc.accounts[id]; !ok {
			out = append(out, fmt.Sprintf("only in the copy: %s %s (%s, %q)", b.Username, b.DN, b.Type, b.SkipReason))
		}
	}
	for e, r := range dc.broken {
		if copy.broken[e] != r {
			out = append(out, fmt.Sprintf("entry error %s: DC %q, copy %q", e, r, copy.broken[e]))
		}
	}
	for e, r := range copy.broken {
		if _, ok := dc.broken[e]; !ok {
			out = append(out, fmt.Sprintf("entry error only in the copy: %s %q", e, r))
		}
	}
	if (dc.err == "") != (copy.err == "") {
		out = append(out, fmt.Sprintf("error: DC %q, copy %q", dc.err, copy.err))
	}
	slices.Sort(out)
	return out
}

// selections are what the differential tests compare: groups nested
// three deep, OUs, built-ins (Domain Users through primaryGroupID), the
// privileged groups, disabled accounts.
func selections(base string) []sources.Selection {
	rel := func(dn string) string { return dn + "," + base }
	return []sources.Selection{
		{Groups: []string{rel(adtest.GroupAllStaff)}},
		{OUs: []string{rel(adtest.OUCorp)}, Admins: true},
		{Builtin: []string{"Domain Users"}},
		{Groups: []string{"Tier3 Ops", rel(adtest.GroupSalesEMEA)}, IncludeDisabled: true},
		{Admins: true},
		{OUs: []string{rel(adtest.OUStaff), rel(adtest.OUBulk)}, Builtin: []string{"Administrators", "Backup Operators"}},
	}
}

// compareCopy checks, for every selection, that the copy yields what the
// DC does.
func compareCopy(t *testing.T, src *ad.Source, copies sources.CopyStore, customer string, sels []sources.Selection, step string) {
	t.Helper()
	ctx := context.Background()
	for i, sel := range sels {
		dc := drain(src.Accounts(ctx, sel))
		cp := drain(src.CopyAccounts(ctx, copies, customer, sel))
		if d := diffOutcomes(dc, cp); len(d) > 0 {
			t.Fatalf("%s: selection %d %+v: the copy differs from the DC:\n%s", step, i, sel, strings.Join(d, "\n"))
		}
		if len(dc.accounts) == 0 && dc.err == "" {
			t.Logf("%s: selection %d yields nothing", step, i)
		}
	}
}

// readOnce reads and fails the test on an error.
func readOnce(t *testing.T, src *ad.Source, copies sources.CopyStore, customer string, sel sources.Selection, opt sources.ReadOptions) sources.ReadReport {
	t.Helper()
	rep, err := src.Read(context.Background(), copies, customer, sel, opt)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return rep
}

var _ sources.CopyStore = (*sourcestest.Copies)(nil)
