package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Read and verify the audit log"}
	c.AddCommand(a.auditListCommand(), a.auditVerifyCommand(), a.auditRechainCommand())
	return c
}

func (a *app) auditListCommand() *cobra.Command {
	var customer string
	var limit int
	var after int64
	list := &cobra.Command{
		Use:   "list [--customer C] [--limit N] [--after ID]",
		Short: "List audit events, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			var events []jobs.AuditEvent
			for e, err := range a.store.AuditEvents(cmd.Context(), jobs.AuditFilter{Customer: customer, AfterID: after, Limit: limit}) {
				if err != nil {
					return err
				}
				events = append(events, e)
			}
			if a.json() {
				out := make([]auditEventOut, len(events))
				for i, e := range events {
					out[i] = auditEventOut{AuditEvent: e}
					out[i].DeclaredActor, out[i].OSUser, out[i].Host = jobs.ParseActor(e.Actor)
				}
				return a.printJSON(out)
			}
			var rows [][]string
			for _, e := range events {
				declared, osUser, host := jobs.ParseActor(e.Actor)
				runAs := ""
				if osUser != "" {
					runAs = osUser + "@" + host
				}
				rows = append(rows, []string{strconv.FormatInt(e.ID, 10), jobs.ChainName(e.Customer) + ":" + strconv.FormatInt(e.Seq, 10), e.At.Format("2006-01-02 15:04:05"), declared, runAs, e.Action, e.Subject, summary(e)})
			}
			a.table([]string{"ID", "CHAIN:SEQ", "AT (UTC)", "ACTOR", "OS USER@HOST", "ACTION", "SUBJECT", "CHANGE"}, rows)
			return nil
		},
	}
	list.Flags().StringVar(&customer, "customer", "", "only this customer's events")
	list.Flags().IntVar(&limit, "limit", 0, "at most N events")
	list.Flags().Int64Var(&after, "after", 0, "only events after this id")
	return list
}

// chainJSON is one chain in `audit verify -o json` and a run's summary.
type chainJSON struct {
	Chain  string `json:"chain"`
	Head   string `json:"head"`
	Keyed  bool   `json:"keyed"`
	Events int    `json:"events"`
	Error  string `json:"error,omitempty"`
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var heads []string
	verify := &cobra.Command{
		Use:   "verify [--head CHAIN=SEQ:HASH]...",
		Short: "Recompute every audit chain, print its head, and name the first altered, deleted or reordered event",
		Long: `Recompute every audit chain (one per customer, and @tenant for tenant-wide
changes) and print each head as CHAIN=SEQ:HASH. With AUTOIMPORT_SECRET_KEY set,
each event's hash is an HMAC under a key derived from it, so that whoever can
write the database but lacks the key cannot make an altered chain verify.

A chain rewound to an earlier point of itself (events deleted from the end,
head moved back) still verifies on its own: keep the heads that every run
prints somewhere else, and check them with --head CHAIN=SEQ:HASH (repeat it,
one per chain): the chain must still hold that event with that hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var kept []jobs.AuditHead
			for _, h := range heads {
				k, err := jobs.ParseKeptHead(h)
				if err != nil {
					return err
				}
				kept = append(kept, k)
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			res, err := jobs.CheckAudit(cmd.Context(), a.store, kept)
			if err != nil {
				if a.json() {
					if perr := a.printJSON(map[string]any{"ok": false, "error": err.Error()}); perr != nil {
						return perr
					}
					return exitError{exitFailed}
				}
				return err
			}
			broken := res.Err()
			if a.json() {
				out := map[string]any{"ok": broken == nil, "events": res.Events, "keyed": res.Unkeyed() == 0 && res.KeyID != "", "key_id": res.KeyID,
					"chains": chainsJSON(res.Chains), "kept_heads_checked": len(kept)}
				if broken != nil {
					out["error"] = broken.Error()
				}
				if err := a.printJSON(out); err != nil {
					return err
				}
				if broken != nil {
					return exitError{exitFailed}
				}
				return nil
			}
			a.printVerification(res, len(kept))
			if broken != nil {
				return exitError{exitFailed}
			}
			return nil
		},
	}
	verify.Flags().StringArrayVar(&heads, "head", nil, "a head kept elsewhere, CHAIN=SEQ:HASH as `run` and `audit verify` print it; the chain must still extend it (repeat, one per chain)")
	return verify
}

func chainsJSON(chains []jobs.ChainCheck) []chainJSON {
	out := make([]chainJSON, 0, len(chains))
	for _, c := range chains {
		cj := chainJSON{Chain: c.Head.Chain(), Head: c.Head.String(), Keyed: c.Head.Keyed(), Events: c.Events}
		if c.Err != nil {
			cj.Error = c.Err.Error()
		}
		out = append(out, cj)
	}
	return out
}

func (a *app) printVerification(res *jobs.AuditCheck, kept int) {
	w := a.stdout
	bad := 0
	for _, c := range res.Chains {
		if c.Err != nil {
			bad++
		}
	}
	switch {
	case bad > 0:
		fmt.Fprintf(w, "audit log NOT intact: %d of %d chains broken or unchecked\n", bad, len(res.Chains))
	case res.Unkeyed() > 0:
		fmt.Fprintf(w, "audit log intact: %d events in %d chains, hash chains verified, but UNKEYED (plain SHA-256): anyone who can write the database can rewrite them undetected; set AUTOIMPORT_SECRET_KEY, and the next command re-chains them under it\n", res.Events, len(res.Chains))
	default:
		fmt.Fprintf(w, "audit log intact: %d events in %d chains, each verified under the key (HMAC-SHA256, key id %s)\n", res.Events, len(res.Chains), res.KeyID)
	}
	if kept > 0 && bad == 0 {
		fmt.Fprintf(w, "it still extends the %d heads kept elsewhere\n", kept)
	}
	for _, c := range res.Chains {
		if c.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", c.Head.Chain(), c.Err)
			continue
		}
		fmt.Fprintf(w, "%s=%s\n", c.Head.Chain(), c.Head)
	}
}

func (a *app) auditRechainCommand() *cobra.Command {
	var acceptBroken bool
	c := &cobra.Command{
		Use:   "rechain [--accept-broken]",
		Short: "Re-chain what opening the database leaves for a person: an unkeyed chain in a keyed log, or a broken log from before per-customer chains",
		Long: `Opening the database re-chains, once and audited, the log written before
per-customer chains and, the first time AUTOIMPORT_SECRET_KEY is set, the
unkeyed chains, each checked first. It leaves for a person what it cannot
re-chain without hiding something: a broken chain (events edited, deleted or
reordered) and an unkeyed chain in a log already keyed (written without the
key, or rebuilt by someone who can write the database). Look first
(autoimport audit verify, autoimport audit list); then this re-chains them
under the key in one transaction recorded by an audit.rechain event. A broken
chain is re-chained only with --accept-broken, its break recorded in that
event.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			rep, err := a.store.Rechain(cmd.Context(), a.cfg.Actor, acceptBroken)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(rep)
			}
			if rep.Empty() {
				fmt.Fprintln(a.stdout, "nothing to re-chain")
				return nil
			}
			fmt.Fprintln(a.stdout, "re-chained (recorded as audit.rechain on the @tenant chain):")
			if rep.Legacy != nil {
				fmt.Fprintf(a.stdout, "  the log from before per-customer chains: %d events, head %s\n", rep.Legacy.Events, rep.Legacy.Head)
				if rep.Legacy.Break != "" {
					fmt.Fprintf(a.stdout, "    its break, accepted: %s\n", rep.Legacy.Break)
				}
			}
			for name, ch := range rep.Unkeyed {
				fmt.Fprintf(a.stdout, "  unkeyed chain %s: %d events, head %s\n", name, ch.Events, ch.Head)
				if ch.Break != "" {
					fmt.Fprintf(a.stdout, "    its break, accepted: %s\n", ch.Break)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&acceptBroken, "accept-broken", false, "re-chain broken chains too, recording their breaks")
	return c
}

// summary shortens an event's change for the table.
func summary(e jobs.AuditEvent) string {
	s := secret.RedactSealed(e.After)
	if s == "" {
		s = "removed"
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// runAudit is the audit part of a run's summary: the heads of the chains
// the run could write to (its customers' and the tenant chain), to be
// kept elsewhere and checked later with `audit verify --head`.
type runAudit struct {
	Keyed bool `json:"keyed"`
	// Heads are CHAIN -> SEQ:HASH.
	Heads map[string]string `json:"heads"`
	Note  string            `json:"note,omitempty"`
	Error string            `json:"error,omitempty"`
}

const unkeyedNote = "UNKEYED: AUTOIMPORT_SECRET_KEY is not set, so the audit chains are plain SHA-256 and anyone who can write the database can rewrite them undetected"

// runAuditOf reads the heads of the run's customers' chains and the
// tenant chain.
func (a *app) runAuditOf(ctx context.Context, rep *jobs.Report) runAudit {
	customers := []string{""}
	for _, c := range rep.Customers {
		customers = append(customers, c.Customer)
	}
	ra := runAudit{Heads: map[string]string{}, Keyed: true}
	heads, err := a.store.AuditHeadsOf(ctx, customers)
	if err != nil {
		ra.Error = err.Error()
		ra.Keyed = false
		return ra
	}
	for _, h := range heads {
		ra.Heads[h.Chain()] = h.String()
		ra.Keyed = ra.Keyed && (h.Keyed() || h.Seq == 0)
	}
	if a.cfg.key == nil || !ra.Keyed {
		ra.Keyed = false
		ra.Note = unkeyedNote
	}
	return ra
}

func printRunAudit(w io.Writer, ra runAudit) {
	if ra.Error != "" {
		fmt.Fprintf(w, "\naudit heads: %s\n", ra.Error)
		return
	}
	fmt.Fprintln(w, "\naudit heads (keep them elsewhere; `autoimport audit verify --head CHAIN=SEQ:HASH` checks that the log still extends them):")
	if ra.Note != "" {
		fmt.Fprintln(w, ra.Note)
	}
	names := make([]string, 0, len(ra.Heads))
	for n := range ra.Heads {
		names = append(names, n)
	}
	sortChains(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s=%s\n", n, ra.Heads[n])
	}
}

// sortChains sorts chain names as the store does, @tenant first.
func sortChains(names []string) {
	key := func(name string) string {
		if name == jobs.TenantChain {
			return ""
		}
		return name
	}
	slices.SortFunc(names, func(x, y string) int { return strings.Compare(key(x), key(y)) })
}
