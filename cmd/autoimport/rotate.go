package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/spf13/cobra"
)

func (a *app) rotateCommand() *cobra.Command {
	var once, dryRun, now bool
	var customers []string
	var account string
	c := &cobra.Command{
		Use:   "rotate [--once] [--dry-run] [--customer C]... [--account A] [--now]",
		Short: "Rotate the passwords of imported administrators that are due, writing each to its vault entry",
		Long: `Rotate, once, the passwords of imported administrators whose rotation flag is on
and whose last rotation (or import) is older than rotation_days: a random password
of rotation_length characters is sealed and recorded before it is set in Active
Directory (LDAPS/StartTLS) or Microsoft 365 (cloud-only accounts), then written to
the account's vault entry. Rotations a crash or a failure left open are finished
first. --dry-run prints the plan: due or not and when, where the password is set,
which vault entry receives it. --now rotates the accounts in scope whether due or
not. The scheduler (autoimport run) rotates after each import pass.
Exit status: 0 all done, 1 a rotation failed or is unfinished, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = once // a rotation command is always one pass
			if account != "" && len(customers) != 1 {
				return usageError{fmt.Errorf("--account needs one --customer")}
			}
			if now && len(customers) == 0 {
				return usageError{fmt.Errorf("--now needs --customer (and optionally --account): rotating every administrator of every customer at once is not what --now is for")}
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			run, err := a.runner(nil).Rotate(cmd.Context(), jobs.RotationRunOptions{Customers: customers, DryRun: dryRun, Account: account, Now: now})
			if err != nil {
				return err
			}
			if a.json() {
				if err := a.printJSON(run); err != nil {
					return err
				}
			} else {
				a.printRotation(run)
			}
			if run.Failed() {
				return exitError{exitFailed}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&once, "once", true, "one pass, then exit (the only mode; the scheduler rotates after each import)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing anywhere")
	c.Flags().StringSliceVar(&customers, "customer", nil, "only this customer (repeat or comma-separate)")
	c.Flags().StringVar(&account, "account", "", "only this administrator (username, UPN or source:id; needs --customer)")
	c.Flags().BoolVar(&now, "now", false, "rotate whether due or not")
	return c
}

func (a *app) printRotation(run *jobs.RotationRun) {
	var rows [][]string
	for _, c := range run.Customers {
		for _, r := range c.Accounts {
			due := ""
			if !r.DueAt.IsZero() {
				due = r.DueAt.Format("2006-01-02")
			}
			rows = append(rows, []string{c.Customer, r.Subject, r.Username, r.Outcome, due, r.Target, strings.TrimSpace(r.VaultIntegration + " " + r.VaultRef), r.Reason})
		}
	}
	if run.DryRun {
		fmt.Fprintln(a.stdout, "DRY RUN: nothing was changed anywhere.")
	}
	a.table([]string{"CUSTOMER", "ACCOUNT", "USERNAME", "OUTCOME", "DUE", "SET IN", "VAULT ENTRY", "REASON"}, rows)
	var parts []string
	for _, k := range []string{jobs.OutcomeRotated, jobs.OutcomeWouldRotate, jobs.OutcomeNotDue, jobs.OutcomeSkipped, jobs.OutcomeFailed, jobs.OutcomeUnknown, jobs.OutcomeVaultPending} {
		if n := run.Outcomes[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	fmt.Fprintf(a.stdout, "rotation %s: %s\n", run.Status, strings.Join(parts, ", "))
	for _, c := range run.Customers {
		if c.Error != "" {
			fmt.Fprintf(a.stdout, "%s: %s\n", c.Customer, c.Error)
		}
	}
}

// accountsPasswordCommand reads the password of an open rotation: the one
// set in the directory and not yet in the vault.
func (a *app) accountsPasswordCommand() *cobra.Command {
	var customer string
	var yes bool
	c := &cobra.Command{
		Use:   "password --customer C ACCOUNT [--yes]",
		Short: "Print the password of a rotation not yet confirmed in the vault, beside the vault's (audited)",
		Long: `Print the password a rotation set (or may have set) in the directory while it is
not yet in the vault: the vault was unreachable, or a pass stopped. Every read is
audited. On a non-terminal standard output it is refused unless --yes, so that a
password does not end up in a log by accident.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				f, ok := a.stdout.(*os.File)
				if !ok || !isatty.IsTerminal(f.Fd()) {
					return usageError{fmt.Errorf("standard output is not a terminal: the password would be written to a file or a pipe; add --yes if that is what you want")}
				}
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if a.cfg.key == nil {
				return &ConfigError{Var: "AUTOIMPORT_SECRET_KEY", Want: describe("SecretKey") + "; it opens the sealed password"}
			}
			acc := a.accounts()
			p, err := acc.PendingPassword(cmd.Context(), customer, args[0], a.cfg.key)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(p)
			}
			fmt.Fprintf(a.stderr, "%s (%s): rotation %s (attempt %d) since %s, set in %s, vault entry %s %s not yet updated\n", p.Account, p.Username, p.State,
				p.Attempt, p.Since.Format("2006-01-02 15:04"), p.Target, p.VaultIntegration, p.VaultRef)
			switch f, ok := a.stderr.(*os.File); {
			case p.VaultError != "":
				fmt.Fprintf(a.stderr, "the vault entry could not be read: %s\n", p.VaultError)
			case ok && isatty.IsTerminal(f.Fd()):
				fmt.Fprintf(a.stderr, "the vault entry holds now: %s\n", p.VaultPassword)
			default:
				fmt.Fprintln(a.stderr, "what the vault entry holds now is not printed on a standard error that is not a terminal (-o json shows it)")
			}
			fmt.Fprintln(a.stdout, p.Password)
			return nil
		},
	}
	customerFlag(c, &customer)
	c.Flags().BoolVar(&yes, "yes", false, "print the password even when standard output is not a terminal")
	return c
}
