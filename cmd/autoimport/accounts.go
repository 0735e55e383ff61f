package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/spf13/cobra"
)

// accounts is the technician's service over the app's store.
func (a *app) accounts() *jobs.Accounts {
	conn := a.connector()
	return &jobs.Accounts{Store: a.store, Connector: conn, TechVault: conn.TechVaultReader(),
		Log: a.log, Actor: jobs.RecordedActor(a.cfg.Actor), LeaseTTL: a.cfg.LeaseTTL}
}

func (a *app) accountsCommand() *cobra.Command {
	c := &cobra.Command{Use: "accounts", Short: "What autoimport knows of a customer's accounts, and a technician's actions on them"}
	c.AddCommand(a.accountsListCommand(), a.accountsShowCommand(), a.accountsMatchCommand(),
		a.accountsIgnoreCommand(), a.accountsUnignoreCommand(), a.accountsSetCommand(), a.accountsWelcomeCommand(),
		a.accountsPasswordCommand())
	return c
}

// customerFlag adds the required --customer flag.
func customerFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "customer", "", "the customer's id (required)")
	_ = c.MarkFlagRequired("customer")
}

func (a *app) accountsListCommand() *cobra.Command {
	var customer, typ, state, source string
	c := &cobra.Command{
		Use:   "list --customer C [--type end-user|admin] [--state S] [--source ad|m365]",
		Short: "Every account autoimport knows for a customer: imported, and those that need a person first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := jobs.AccountFilter{State: state, Source: source}
			if typ != "" {
				t, err := jobs.ParseAccountType(typ)
				if err != nil {
					return err
				}
				f.Type = t
			}
			if err := jobs.CheckAccountFilter(f); err != nil {
				return err
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			rows, err := a.accounts().List(cmd.Context(), customer, f)
			if err != nil {
				return err
			}
			if a.json() {
				if rows == nil {
					rows = []jobs.AccountRow{}
				}
				return a.printJSON(rows)
			}
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				table = append(table, []string{r.Subject(), r.Username, r.DisplayName, string(r.Type), r.State, vaultText(r.VaultRef, r.VaultName),
					r.PSARef, r.Welcome, flagsText(r.Flags), dateText(r.LastSeen), r.Reason})
			}
			a.table([]string{"ACCOUNT", "USERNAME", "NAME", "TYPE", "STATE", "VAULT ENTRY", "PSA CONTACT", "WELCOME", "FLAGS", "LAST SEEN", "WHY A PERSON IS NEEDED"}, table)
			fmt.Fprintf(a.stdout, "%d accounts%s\n", len(rows), countByState(rows))
			return nil
		},
	}
	customerFlag(c, &customer)
	c.Flags().StringVar(&typ, "type", "", "end-user or admin")
	c.Flags().StringVar(&state, "state", "", "one of "+strings.Join(jobs.AccountStates, ", "))
	c.Flags().StringVar(&source, "source", "", "ad or m365")
	return c
}

func countByState(rows []jobs.AccountRow) string {
	n := map[string]int{}
	for _, r := range rows {
		n[r.State]++
	}
	var parts []string
	for _, s := range jobs.AccountStates {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

func vaultText(ref, name string) string {
	switch {
	case ref == "":
		return ""
	case name == "":
		return ref
	}
	return fmt.Sprintf("%s %q", ref, name)
}

func flagsText(f *jobs.Flags) string {
	if f == nil {
		return ""
	}
	return flags(*f)
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02 15:04")
}

func (a *app) accountsShowCommand() *cobra.Command {
	var customer string
	c := &cobra.Command{
		Use:   "show --customer C ACCOUNT",
		Short: "One account: its state, links, flags, options snapshot and audit history (ACCOUNT: username, UPN, ad:<id> or m365:<id>)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			d, err := a.accounts().Show(cmd.Context(), customer, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(d)
			}
			w := a.stdout
			fmt.Fprintf(w, "%s %s (%s), %s account of customer %s\n", d.Subject(), d.Username, d.DisplayName, d.Type, customer)
			fmt.Fprintf(w, "state:        %s\n", d.State)
			if d.Reason != "" {
				fmt.Fprintf(w, "why:          %s\n", d.Reason)
			}
			if d.VaultRef != "" {
				fmt.Fprintf(w, "vault entry:  %s %s\n", d.VaultIntegration, vaultText(d.VaultRef, d.VaultName))
			}
			if d.PSARef != "" {
				fmt.Fprintf(w, "PSA contact:  %s %s\n", d.PSAIntegration, d.PSARef)
			}
			if d.Flags != nil {
				fmt.Fprintf(w, "flags:        %s\n", flagsText(d.Flags))
				fmt.Fprintf(w, "welcome:      %s\n", d.Welcome)
				fmt.Fprintf(w, "imported:     %s under %s\n", dateText(d.ImportedAt), d.OptionsOrigin)
				fmt.Fprintf(w, "options then: %s\n", optionsText(d.Type, d.Options))
			}
			if !d.LastSeen.IsZero() {
				fmt.Fprintf(w, "last seen:    %s\n", dateText(d.LastSeen))
			}
			if d.Decision != nil {
				fmt.Fprintf(w, "decision:     %s by %s on %s %s\n", d.Decision.Kind, d.Decision.Actor, dateText(d.Decision.At), decisionText(d.Decision))
			}
			fmt.Fprintln(w, "history:")
			rows := make([][]string, 0, len(d.History))
			for _, e := range d.History {
				rows = append(rows, []string{strconv.FormatInt(e.ID, 10), e.At.Format(time.RFC3339), e.Actor, e.Action, summary(e)})
			}
			a.table([]string{"ID", "AT", "ACTOR", "ACTION", "CHANGE"}, rows)
			return nil
		},
	}
	customerFlag(c, &customer)
	return c
}

func optionsText(typ jobs.AccountType, v jobs.Values) string {
	var on []string
	for _, k := range jobs.OptionKeys(typ) {
		if v[k] {
			on = append(on, string(k))
		}
	}
	if len(on) == 0 {
		return "all off"
	}
	return strings.Join(on, ", ") + " on"
}

func decisionText(d *jobs.AccountDecision) string {
	var parts []string
	if d.VaultRef != "" {
		parts = append(parts, "vault entry "+d.VaultRef)
	}
	if d.VaultCreate {
		parts = append(parts, "create a vault entry")
	}
	if d.PSARef != "" {
		parts = append(parts, "PSA contact "+d.PSARef)
	}
	if d.PSACreate {
		parts = append(parts, "create a PSA contact")
	}
	if d.Reason != "" {
		parts = append(parts, d.Reason)
	}
	return "(" + strings.Join(parts, "; ") + ")"
}

func (a *app) accountsMatchCommand() *cobra.Command {
	var customer string
	var req jobs.MatchRequest
	c := &cobra.Command{
		Use:   "match --customer C ACCOUNT (--vault-entry ID | --vault-create) [--psa-contact ID | --psa-create] [--dry-run]",
		Short: "Manual Matching: choose the vault entry (and PSA contact) of an account, or re-link an imported one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			res, err := a.accounts().Match(cmd.Context(), customer, args[0], req)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(res)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stdout, "warning: %s\n", w)
			}
			prefix := ""
			if res.DryRun {
				prefix = "dry run, nothing written: "
			}
			what := decisionText(&jobs.AccountDecision{VaultRef: req.VaultRef, VaultCreate: req.VaultCreate, PSARef: req.PSARef, PSACreate: req.PSACreate})
			switch res.Action {
			case "relinked":
				fmt.Fprintf(a.stdout, "%s%s re-linked %s (was vault entry %q, PSA contact %q; the audit log keeps it)\n", prefix, res.Account.Subject(), what, res.Before.VaultRef, res.Before.PSARef)
			default:
				fmt.Fprintf(a.stdout, "%s%s %s: the next run imports it so %s\n", prefix, res.Account.Subject(), res.Account.Username, what)
			}
			return nil
		},
	}
	customerFlag(c, &customer)
	c.Flags().StringVar(&req.VaultRef, "vault-entry", "", "the id of the vault entry to use")
	c.Flags().BoolVar(&req.VaultCreate, "vault-create", false, "create a new vault entry even where several fit")
	c.Flags().StringVar(&req.PSARef, "psa-contact", "", "the id of the PSA contact to use (end users)")
	c.Flags().BoolVar(&req.PSACreate, "psa-create", false, "create a new PSA contact even where several fit")
	c.Flags().BoolVar(&req.DryRun, "dry-run", false, "check and show, write nothing")
	return c
}

func (a *app) printExclusions(res []jobs.ExclusionResult, dryRun bool, verb string) error {
	if a.json() {
		return a.printJSON(res)
	}
	rows := make([][]string, 0, len(res))
	for _, r := range res {
		what := verb
		if dryRun {
			what = "would be " + verb
		}
		if !r.Done {
			what = "left as it is: " + r.Reason
		}
		rows = append(rows, []string{r.Subject, r.Account, what})
	}
	a.table([]string{"ACCOUNT", "NAMED", "RESULT"}, rows)
	return nil
}

func (a *app) accountsIgnoreCommand() *cobra.Command {
	var customer, reason string
	var dryRun bool
	c := &cobra.Command{
		Use:   "ignore --customer C ACCOUNT... --reason TEXT [--dry-run]",
		Short: "Never import these accounts (an account not seen yet can be named ad:<id> or m365:<id>)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			res, err := a.accounts().Ignore(cmd.Context(), customer, args, reason, dryRun)
			if err != nil {
				return err
			}
			return a.printExclusions(res, dryRun, "ignored")
		},
	}
	customerFlag(c, &customer)
	c.Flags().StringVar(&reason, "reason", "", "why (shown to every technician; required)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show, write nothing")
	return c
}

func (a *app) accountsUnignoreCommand() *cobra.Command {
	var customer string
	var dryRun bool
	c := &cobra.Command{
		Use:   "unignore --customer C ACCOUNT... [--dry-run]",
		Short: "Withdraw exclusions: the next run imports the accounts as their options say",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			res, err := a.accounts().Unignore(cmd.Context(), customer, args, dryRun)
			if err != nil {
				return err
			}
			return a.printExclusions(res, dryRun, "no longer ignored")
		},
	}
	customerFlag(c, &customer)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show, write nothing")
	return c
}

// selectionArgs splits ACCOUNT... from key=value settings.
func selectionArgs(args []string) (accounts []string, settings map[string]string) {
	settings = map[string]string{}
	for _, arg := range args {
		if k, v, ok := strings.Cut(arg, "="); ok {
			settings[k] = v
			continue
		}
		accounts = append(accounts, arg)
	}
	return accounts, settings
}

func (a *app) accountsSetCommand() *cobra.Command {
	var customer, typ string
	var all, dryRun, yes bool
	c := &cobra.Command{
		Use:   "set --customer C (--all | ACCOUNT...) [--type T] self_serve=true|false rotation=true|false [--dry-run] [--yes]",
		Short: "Roll-out: turn self_serve (end users) or rotation (administrators) on or off for accounts already imported",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, settings := selectionArgs(args)
			var set jobs.FlagSettings
			for k, v := range settings {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return usageError{fmt.Errorf("%s=%s: want true or false", k, v)}
				}
				switch k {
				case "self_serve":
					set.SelfServe = &b
				case "rotation":
					set.Rotation = &b
				default:
					return usageError{fmt.Errorf("%s: only self_serve and rotation can be set on imported accounts (other options apply to future imports: autoimport options set)", k)}
				}
			}
			sel := jobs.Selection{All: all, Accounts: names}
			if typ != "" {
				t, err := jobs.ParseAccountType(typ)
				if err != nil {
					return err
				}
				sel.Type = t
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			acc := a.accounts()
			if all && !dryRun && !yes {
				preview, err := acc.SetFlags(cmd.Context(), customer, sel, set, true)
				if err != nil {
					return err
				}
				return usageError{fmt.Errorf("--all would change %d of %d imported accounts of %s: run again with --yes (or --dry-run to see them)", changedCount(preview), len(preview), customer)}
			}
			res, err := acc.SetFlags(cmd.Context(), customer, sel, set, dryRun)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(res)
			}
			rows := make([][]string, 0, len(res))
			for _, r := range res {
				what := "changed"
				if dryRun {
					what = "would change"
				}
				if !r.Changed {
					what = "left as it is: " + r.Reason
				}
				rows = append(rows, []string{r.Subject, r.Account, string(r.Type), flags(r.Before), flags(r.After), what})
			}
			a.table([]string{"ACCOUNT", "USERNAME", "TYPE", "BEFORE", "AFTER", "RESULT"}, rows)
			fmt.Fprintf(a.stdout, "%d of %d accounts %s; their options snapshots are unchanged\n", changedCount(res), len(res), map[bool]string{true: "would change", false: "changed"}[dryRun])
			return nil
		},
	}
	customerFlag(c, &customer)
	c.Flags().BoolVar(&all, "all", false, "every imported account of the customer (of --type, when given)")
	c.Flags().StringVar(&typ, "type", "", "end-user or admin")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show, write nothing")
	c.Flags().BoolVar(&yes, "yes", false, "confirm a change of --all accounts")
	return c
}

func changedCount(res []jobs.FlagChange) int {
	n := 0
	for _, r := range res {
		if r.Changed {
			n++
		}
	}
	return n
}

func (a *app) accountsWelcomeCommand() *cobra.Command {
	var customer string
	var all, dryRun, yes bool
	c := &cobra.Command{
		Use:   "welcome --customer C (--all | ACCOUNT...) [--dry-run] [--yes]",
		Short: "Send the welcome email to imported end users who never received one (at most once, as the import does)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			sel := jobs.Selection{All: all, Accounts: args}
			acc := a.accounts()
			if all && !dryRun && !yes {
				preview, _, err := acc.Welcome(cmd.Context(), customer, sel, true)
				if err != nil {
					return err
				}
				return usageError{fmt.Errorf("--all would send %d welcome emails for %s: run again with --yes (or --dry-run to see them)", dueCount(preview), customer)}
			}
			out, res, err := acc.Welcome(cmd.Context(), customer, sel, dryRun)
			if a.json() {
				if perr := a.printJSON(map[string]any{"accounts": out, "result": res, "dry_run": dryRun}); perr != nil {
					return perr
				}
				if err != nil {
					fmt.Fprintln(a.stderr, "autoimport:", err)
					return exitError{exitFailed}
				}
				return nil
			}
			rows := make([][]string, 0, len(out))
			for _, o := range out {
				what := o.After
				if o.Skipped != "" {
					what = "skipped: " + o.Skipped
				}
				rows = append(rows, []string{o.Subject, o.Account, o.To, o.Before, what})
			}
			if len(rows) > 0 {
				a.table([]string{"ACCOUNT", "USERNAME", "TO", "BEFORE", "NOW"}, rows)
			}
			if dryRun {
				fmt.Fprintf(a.stdout, "dry run: %d welcome emails would be sent; nothing was sent or written\n", dueCount(out))
			} else {
				fmt.Fprintf(a.stdout, "%d sent, %d refused, %d unconfirmed (never resent), %d pending\n", res.Sent, res.Failed, res.Unconfirmed, res.Pending)
			}
			return err
		},
	}
	customerFlag(c, &customer)
	c.Flags().BoolVar(&all, "all", false, "every imported end user of the customer")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show, send and write nothing")
	c.Flags().BoolVar(&yes, "yes", false, "confirm sending to --all accounts")
	return c
}

func dueCount(out []jobs.WelcomeOutcome) int {
	n := 0
	for _, o := range out {
		if o.Skipped == "" {
			n++
		}
	}
	return n
}
