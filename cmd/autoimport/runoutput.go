package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/msp-tools/autoimport/jobs"
)

// accountWriter writes a run's accounts as they are decided, then what
// closes the output once the run is over.
type accountWriter interface {
	account(customer string, p *jobs.AccountPlan)
	finish(rep *jobs.Report, audit runAudit) error
}

type discardAccounts struct{}

func (discardAccounts) account(string, *jobs.AccountPlan)   {}
func (discardAccounts) finish(*jobs.Report, runAudit) error { return nil }

// jsonReport writes a run as one JSON document while it goes on: every
// account, one per line, in "accounts", then the report's summary fields.
type jsonReport struct {
	w     *bufio.Writer
	n     int
	err   error
	entry struct {
		Customer string `json:"customer"`
		*jobs.AccountPlan
	}
}

func newJSONReport(w io.Writer) *jsonReport {
	j := &jsonReport{w: bufio.NewWriterSize(w, 64<<10)}
	_, j.err = j.w.WriteString("{\n  \"accounts\": [")
	return j
}

func (j *jsonReport) account(customer string, p *jobs.AccountPlan) {
	if j.err != nil {
		return
	}
	j.entry.Customer, j.entry.AccountPlan = customer, p
	b, err := json.Marshal(&j.entry)
	if err != nil {
		j.err = err
		return
	}
	if j.n > 0 {
		j.w.WriteByte(',')
	}
	j.n++
	j.w.WriteString("\n    ")
	_, j.err = j.w.Write(b)
}

func (j *jsonReport) finish(rep *jobs.Report, audit runAudit) error {
	if j.err != nil {
		return fmt.Errorf("write the JSON report: %w", j.err)
	}
	b, err := json.MarshalIndent(struct {
		*jobs.Report
		Audit runAudit `json:"audit"`
	}{rep, audit}, "", "  ")
	if err != nil {
		return err
	}
	// The summary's fields follow the accounts in the same object.
	b = bytes.TrimPrefix(b, []byte("{\n"))
	if j.n > 0 {
		j.w.WriteString("\n  ")
	}
	j.w.WriteString("],\n")
	j.w.Write(b)
	j.w.WriteByte('\n')
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("write the JSON report: %w", err)
	}
	return nil
}

// planTable writes a dry run's plan as a table, a block of rows at a time.
type planTable struct {
	out  io.Writer
	tw   *tabwriter.Writer
	rows int
}

// planTableBlock is how many rows are aligned together before they are
// written out.
const planTableBlock = 200

var planTableHeader = []string{"CUSTOMER", "SOURCE", "USERNAME", "TYPE", "ACTION", "VAULT", "PSA", "EMAIL", "FLAGS", "REASON"}

func newPlanTable(w io.Writer) *planTable {
	fmt.Fprintln(w, "DRY RUN: the plan below was not carried out; nothing was written anywhere.")
	fmt.Fprintln(w)
	t := &planTable{out: w, tw: tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(planTableHeader, "\t"))
	return t
}

func (t *planTable) account(customer string, p *jobs.AccountPlan) {
	if p.Action == jobs.ActionAlreadyImported {
		return
	}
	fmt.Fprintln(t.tw, strings.Join([]string{customer, p.Source, p.Username, string(p.Type), p.Action, step(p.Vault), step(p.PSA), p.WelcomeMail.Op, flags(p.Flags), p.Reason}, "\t"))
	if t.rows++; t.rows%planTableBlock == 0 {
		t.tw.Flush()
	}
}

func (t *planTable) finish(*jobs.Report, runAudit) error {
	if t.rows == 0 {
		fmt.Fprintln(t.tw, "(no new accounts)")
	}
	err := t.tw.Flush()
	fmt.Fprintln(t.out)
	return err
}
