package main

import (
	"fmt"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/msp-tools/autoimport/jobs"
	"github.com/spf13/cobra"
)

// vaultCommand reads the Technician Vault: the passwords autoimport stores
// itself (every administrator's, when it is enabled).
func (a *app) vaultCommand() *cobra.Command {
	c := &cobra.Command{Use: "vault", Short: "Read the Technician Vault: list a customer's entries, show one, reveal its password (audited)"}
	c.AddCommand(a.vaultListCommand(), a.vaultShowCommand(), a.vaultRevealCommand())
	return c
}

func (a *app) vaultListCommand() *cobra.Command {
	var customer string
	c := &cobra.Command{
		Use:   "list --customer C",
		Short: "A customer's Technician Vault entries, with the account each holds the password of (no password is shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			l, err := a.accounts().VaultEntries(cmd.Context(), customer)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(l)
			}
			if !l.Enabled {
				fmt.Fprintln(a.stdout, "The Technician Vault is not enabled (integrations.techvault); the entries stored while it was stay readable.")
			}
			rows := make([][]string, 0, len(l.Entries))
			for _, e := range l.Entries {
				rows = append(rows, []string{e.ID, e.Name, e.Username, e.Category, accountText(e), dateText(e.LastRotated), passwordText(e)})
			}
			a.table([]string{"ENTRY", "NAME", "USERNAME", "CATEGORY", "ACCOUNT", "LAST ROTATED", "PASSWORD"}, rows)
			noun := "entries"
			if len(l.Entries) == 1 {
				noun = "entry"
			}
			fmt.Fprintf(a.stdout, "%d %s of %s; reveal a password: autoimport vault reveal --customer %s ENTRY|ACCOUNT\n", len(l.Entries), noun, customer, customer)
			return nil
		},
	}
	customerFlag(c, &customer)
	return c
}

func accountText(e jobs.VaultEntryView) string {
	if e.Account == "" {
		return ""
	}
	return e.Account + " " + e.AccountUsername
}

func passwordText(e jobs.VaultEntryView) string {
	switch {
	case !e.HasPassword:
		return "none yet"
	case e.Pending != "":
		return "stored; a rotation is open"
	}
	return "stored"
}

func (a *app) vaultShowCommand() *cobra.Command {
	var customer string
	c := &cobra.Command{
		Use:   "show --customer C ACCOUNT|ENTRY",
		Short: "One Technician Vault entry: its name, username, category, notes, account and last rotation (no password)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			e, err := a.accounts().VaultEntry(cmd.Context(), customer, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(e)
			}
			w := a.stdout
			fmt.Fprintf(w, "entry:        %s (Technician Vault of %s)\n", e.ID, customer)
			fmt.Fprintf(w, "name:         %s\n", e.Name)
			fmt.Fprintf(w, "username:     %s\n", e.Username)
			fmt.Fprintf(w, "category:     %s\n", e.Category)
			if e.Account != "" {
				fmt.Fprintf(w, "account:      %s %s (%s)\n", e.Account, e.AccountUsername, e.AccountType)
			}
			rotated := "never"
			if !e.LastRotated.IsZero() {
				rotated = dateText(e.LastRotated)
			}
			fmt.Fprintf(w, "last rotated: %s\n", rotated)
			fmt.Fprintf(w, "created:      %s\n", dateText(e.Created))
			fmt.Fprintf(w, "password:     %s\n", passwordText(*e))
			if e.Notes != "" {
				fmt.Fprintf(w, "notes:        %s\n", e.Notes)
			}
			if e.Pending != "" {
				fmt.Fprintf(w, "warning:      %s\n", e.Pending)
			}
			return nil
		},
	}
	customerFlag(c, &customer)
	return c
}

func (a *app) vaultRevealCommand() *cobra.Command {
	var customer string
	var yes bool
	c := &cobra.Command{
		Use:   "reveal --customer C ACCOUNT|ENTRY [--yes]",
		Short: "Print a Technician Vault entry's password alone on standard output (audited)",
		Long: `Print the password a Technician Vault entry holds, alone on standard output, so
that it can be piped. Every reveal is audited with the declared actor
(AUTOIMPORT_ACTOR) and the operating-system user and host, never with the
password. On a
non-terminal standard output it is refused unless --yes, so that a password does
not end up in a log by accident. While a rotation of the account is open the
directory may hold a newer password: the command says so on standard error
(autoimport accounts password reads that one).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.passwordToTerminal(yes); err != nil {
				return err
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if a.cfg.key == nil {
				return &ConfigError{Var: "AUTOIMPORT_SECRET_KEY", Want: describe("SecretKey") + "; it opens the entry's sealed password"}
			}
			p, err := a.accounts().RevealVaultPassword(cmd.Context(), customer, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(p)
			}
			e := p.Entry
			what := e.Name
			if e.Account != "" {
				what = fmt.Sprintf("%s, the password of %s %s", e.Name, e.Account, e.AccountUsername)
			}
			fmt.Fprintf(a.stderr, "Technician Vault entry %s (%s); this reveal is audited\n", e.ID, what)
			if e.Pending != "" {
				fmt.Fprintf(a.stderr, "warning: %s\n", e.Pending)
			}
			fmt.Fprintln(a.stdout, p.Password)
			return nil
		},
	}
	customerFlag(c, &customer)
	c.Flags().BoolVar(&yes, "yes", false, "print the password even when standard output is not a terminal")
	return c
}

// passwordToTerminal refuses to print a password to a file or a pipe
// unless the person said so.
func (a *app) passwordToTerminal(yes bool) error {
	if yes {
		return nil
	}
	if f, ok := a.stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		return nil
	}
	return usageError{fmt.Errorf("standard output is not a terminal: the password would be written to a file or a pipe; add --yes if that is what you want")}
}
