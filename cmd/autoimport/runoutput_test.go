package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/jobs"
)

func plan(user, action string) jobs.AccountPlan {
	return jobs.AccountPlan{Source: "ad", ID: "id-" + user, Username: user, Type: jobs.EndUser, Action: action,
		Vault: jobs.SinkStep{Op: jobs.OpCreate, Integration: "IT Glue"}, PSA: jobs.SinkStep{Op: jobs.OpNone}, WelcomeMail: jobs.EmailStep{Op: jobs.OpSend}}
}

func TestJSONReportIsOneDocumentWithEveryAccount(t *testing.T) {
	rep := &jobs.Report{Started: time.Unix(1, 0).UTC(), Finished: time.Unix(2, 0).UTC(), Status: jobs.StatusOK,
		Customers: []*jobs.CustomerReport{{Customer: "acme", Status: jobs.StatusOK, Counts: jobs.Counts{Imported: 2}}}}
	for _, n := range []int{0, 1, 3} {
		var buf bytes.Buffer
		w := newJSONReport(&buf)
		for i := range n {
			w.account("acme", new(plan(strings.Repeat("u", i+1), jobs.ActionImport)))
		}
		if err := w.finish(rep, runAudit{}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Accounts []struct {
				Customer string `json:"customer"`
				Username string `json:"username"`
				Action   string `json:"action"`
			} `json:"accounts"`
			Status    string `json:"status"`
			Customers []struct {
				Customer string      `json:"customer"`
				Counts   jobs.Counts `json:"counts"`
			} `json:"customers"`
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%d accounts: not one JSON document: %v\n%s", n, err, buf.String())
		}
		if len(got.Accounts) != n || got.Status != "ok" || len(got.Customers) != 1 || got.Customers[0].Counts.Imported != 2 {
			t.Fatalf("%d accounts: %+v", n, got)
		}
		for _, a := range got.Accounts {
			if a.Customer != "acme" || a.Action != jobs.ActionImport || a.Username == "" {
				t.Fatalf("account %+v", a)
			}
		}
	}
}

func TestPlanTableStreamsNewAccountsOnly(t *testing.T) {
	var buf bytes.Buffer
	w := newPlanTable(&buf)
	for i := range planTableBlock + 5 {
		w.account("acme", new(plan("user"+strings.Repeat("x", i%7), jobs.ActionImport)))
	}
	w.account("acme", new(plan("old", jobs.ActionAlreadyImported)))
	if err := w.finish(&jobs.Report{}, runAudit{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "DRY RUN") || strings.Contains(out, " old ") || strings.Count(out, "\nacme ") != planTableBlock+5 {
		t.Fatalf("table:\n%s", out)
	}

	buf.Reset()
	w = newPlanTable(&buf)
	w.account("acme", new(plan("old", jobs.ActionAlreadyImported)))
	w.finish(&jobs.Report{}, runAudit{})
	if !strings.Contains(buf.String(), "(no new accounts)") {
		t.Fatalf("empty table:\n%s", buf.String())
	}
}

// A customer whose pass found nothing changed since its last one says so
// in the summary, with how to have everything read and decided again.
func TestSummarySaysWhenNothingChanged(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	since := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	a.printReport(&jobs.Report{Status: jobs.StatusOK, Customers: []*jobs.CustomerReport{
		{Customer: "acme", Status: jobs.StatusOK, Counts: jobs.Counts{AlreadyImported: 5}, UnchangedSince: since},
		{Customer: "bravo", Status: jobs.StatusOK, Counts: jobs.Counts{Imported: 1}},
	}})
	want := "acme: nothing changed since the pass of " + since.Local().Format(time.DateTime)
	if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "bravo: nothing changed") || !strings.Contains(out.String(), "run --once --full") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

// A customer whose pass took 5 seconds or more says where the time went;
// a quick one, or a settled one, does not.
func TestSummarySaysWhereASlowPassWent(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	a.printReport(&jobs.Report{Status: jobs.StatusOK, Customers: []*jobs.CustomerReport{
		{Customer: "acme", Status: jobs.StatusOK, Elapsed: 71790 * time.Millisecond,
			Times: jobs.PassTimes{Directories: 23990 * time.Millisecond, Selection: 2400 * time.Millisecond, Indexes: 110 * time.Millisecond, NewAccounts: 44840 * time.Millisecond}},
		{Customer: "bravo", Status: jobs.StatusOK, Elapsed: 300 * time.Millisecond, Times: jobs.PassTimes{Directories: 200 * time.Millisecond}},
		{Customer: "carol", Status: jobs.StatusOK, Elapsed: 6 * time.Second, UnchangedSince: time.Now(), Times: jobs.PassTimes{Directories: 6 * time.Second}},
	}})
	want := "acme: took 1m11.79s: directories 23.99s, selection 2.40s, indexes 0.11s, new accounts 44.84s, the rest 0.45s"
	if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "bravo: took") || strings.Contains(out.String(), "carol: took") {
		t.Fatalf("summary:\n%s\nwant %q and no line for bravo or carol", out.String(), want)
	}
}
