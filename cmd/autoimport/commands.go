package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/msp-tools/autoimport/internal/secret"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sinks/techvault"
	"github.com/msp-tools/autoimport/sql/store"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// app holds what the commands share: configuration, the store, output.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	output         string

	cfg   *Config
	log   *logrus.Logger
	store *store.Store
}

// setup reads the configuration and opens the store (migrating it).
func (a *app) setup(ctx context.Context) error {
	if a.store != nil {
		return nil
	}
	if a.cfg == nil {
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		a.cfg = cfg
	}
	a.log = newLogger(a.cfg, a.stderr)
	s, err := store.Open(ctx, a.cfg.DatabaseURL, store.WithAuditKey(jobs.NewAuditKey(a.cfg.key)))
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	a.store = s
	// Values sealed before they were bound to their place are sealed
	// again for it, once, by the first process that has the key.
	var rebinders []jobs.SealedRebinder
	if a.cfg.key != nil {
		rebinders = append(rebinders, techvault.New(s, a.cfg.key).BindSealed)
	}
	if n, err := jobs.BindSealedValues(ctx, s, a.cfg.key, jobs.RecordedActor(a.cfg.Actor), rebinders...); err != nil {
		return fmt.Errorf("database: %w", err)
	} else if n > 0 {
		a.log.WithField("values", n).Info("sealed values bound to their customer, account and field")
	}
	return nil
}

func (a *app) close() {
	if a.store != nil {
		a.store.Close()
	}
}

func (a *app) admin() *jobs.TenantAdmin {
	return &jobs.TenantAdmin{Store: a.store, Actor: jobs.RecordedActor(a.cfg.Actor)}
}

func (a *app) json() bool { return a.output == "json" }

// auditEventOut is an audit event as `audit list -o json` prints it: the
// recorded actor split into the name the process declared
// (AUTOIMPORT_ACTOR) and the operating-system user and host it ran as.
type auditEventOut struct {
	jobs.AuditEvent
	DeclaredActor string `json:"declared_actor"`
	OSUser        string `json:"os_user"`
	Host          string `json:"host"`
}

// printJSON writes v as indented JSON. Sealed secrets, wherever they stand
// (a customer's bind password, an integration's key inside an audit
// event), are printed as "sealed:…", never as their ciphertext.
func (a *app) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(a.stdout, secret.RedactSealed(b.String()))
	return err
}

// table writes rows as aligned columns.
func (a *app) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (a *app) tenant(ctx context.Context) (*jobs.Tenant, error) {
	if err := a.setup(ctx); err != nil {
		return nil, err
	}
	return a.store.LoadTenant(ctx)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.json() {
				return a.printJSON(map[string]string{"version": version})
			}
			fmt.Fprintln(a.stdout, "autoimport", version)
			return nil
		},
	}
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (also done automatically at start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			applied, err := a.store.AppliedMigrations(cmd.Context())
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(map[string]any{"dialect": a.store.Dialect(), "applied": applied})
			}
			fmt.Fprintf(a.stdout, "%s database is at migration %s (%d applied)\n", a.store.Dialect(), applied[len(applied)-1], len(applied))
			return nil
		},
	}
}

func (a *app) applyCommand() *cobra.Command {
	var file string
	var dryRun bool
	c := &cobra.Command{
		Use:   "apply -f tenant.yaml",
		Short: "Create or update integrations, policies, customers and options from a tenant file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("apply needs -f FILE (the tenant file; - reads standard input)")}
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(a.stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return usageError{fmt.Errorf("read tenant file: %w", err)}
			}
			// Secrets and templates are checked against this process's
			// AUTOIMPORT_SECRETS_DIR, key and database password.
			want, err := jobs.ParseTenantFileToApply(file, data, a.cfg.secrets())
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintf(a.stdout, "%s is valid: %d policies, %d customers\n", file, len(want.Policies), len(want.Customers))
				return nil
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			res, err := a.admin().Apply(cmd.Context(), want)
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(res)
			}
			if len(res.Changes) == 0 {
				fmt.Fprintln(a.stdout, "no changes: the store already matches", file)
			}
			for _, ch := range res.Changes {
				fmt.Fprintln(a.stdout, ch)
			}
			for _, u := range res.Untouched {
				fmt.Fprintf(a.stdout, "note: %s is not in %s and was left as it is (apply never deletes)\n", u, file)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "tenant file (YAML); - for standard input")
	c.Flags().BoolVar(&dryRun, "check", false, "only validate the file")
	return c
}

func (a *app) exportCommand() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "export [-f FILE]",
		Short: "Write the current tenant in the tenant file format (secrets as references or sealed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			b, err := jobs.EncodeTenantFile(t)
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err = a.stdout.Write(b)
				return err
			}
			return writePrivateFile(file, b)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "write to FILE instead of standard output")
	return c
}

// writePrivateFile replaces path with data, readable by its owner only
// whatever the umask or the mode of a file it replaces: an export names
// every integration and holds sealed secrets. The data goes to a new file
// beside path that is renamed over it, so a reader never sees half a file.
func writePrivateFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (a *app) customerCommand() *cobra.Command {
	c := &cobra.Command{Use: "customer", Short: "List and show customers"}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List customers with their policies and integrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(t.Customers)
			}
			var rows [][]string
			for _, cu := range t.Customers {
				eu, ad := jobs.Resolve(t, cu, jobs.EndUser), jobs.Resolve(t, cu, jobs.Admin)
				rows = append(rows, []string{cu.ID, cu.Name, originText(eu), originText(ad), sourcesText(cu), mappingText(t, cu)})
			}
			a.table([]string{"ID", "NAME", "END-USER OPTIONS", "ADMIN OPTIONS", "SOURCES", "VAULT / PSA"}, rows)
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "show CUSTOMER",
		Short: "Show one customer's mappings, selections and options",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			cu, ok := t.Customer(args[0])
			if !ok {
				return fmt.Errorf("no customer %q (autoimport customer list shows them)", args[0])
			}
			if a.json() {
				return a.printJSON(map[string]any{"customer": cu, "options": []jobs.Resolved{jobs.Resolve(t, cu, jobs.EndUser), jobs.Resolve(t, cu, jobs.Admin)}})
			}
			fmt.Fprintf(a.stdout, "%s — %s\n", cu.ID, cu.Name)
			fmt.Fprintf(a.stdout, "  sources:   %s\n", sourcesText(cu))
			fmt.Fprintf(a.stdout, "  vault/PSA: %s\n", mappingText(t, cu))
			if ad := cu.Sources.AD; ad != nil {
				fmt.Fprintf(a.stdout, "  AD:        %s base %s; groups %v, OUs %v, built-in %v\n", ad.URL, ad.BaseDN, ad.Select.Groups, ad.Select.OUs, ad.Select.Builtin)
			}
			if m := cu.Sources.M365; m != nil {
				fmt.Fprintf(a.stdout, "  M365:      tenant %s; groups %v, roles %v\n", m.TenantID, m.Select.Groups, m.Select.Roles)
			}
			for _, typ := range jobs.AccountTypes {
				fmt.Fprintln(a.stdout)
				a.printResolved(jobs.Resolve(t, cu, typ))
			}
			return nil
		},
	})
	return c
}

func originText(r jobs.Resolved) string {
	switch r.Origin {
	case jobs.FromPolicy:
		return "policy " + strconv.Quote(r.Policy)
	case jobs.FromDefaultPolicy:
		return "default policy " + strconv.Quote(r.Policy)
	case jobs.FromCustomer:
		return "customer-specific"
	}
	return "built-in defaults"
}

func sourcesText(c jobs.Customer) string {
	var s []string
	if c.Sources.AD != nil {
		s = append(s, "AD")
	}
	if c.Sources.M365 != nil {
		s = append(s, "M365")
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, "+")
}

func mappingText(t *jobs.Tenant, c jobs.Customer) string {
	cp := jobs.CapabilitiesOf(t.Integrations, c)
	s := append([]string{}, cp.Vaults...)
	if cp.TechVault {
		s = append(s, "Technician Vault")
	}
	if cp.PSA != "" {
		s = append(s, cp.PSA+" "+c.PSA.CompanyID)
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func (a *app) printResolved(r jobs.Resolved) {
	fmt.Fprintf(a.stdout, "%s options for %s: %s\n", r.Type, r.Customer, originText(r))
	var rows [][]string
	for _, s := range r.Settings {
		origin := string(s.Origin)
		if s.Policy != "" {
			origin += " " + strconv.Quote(s.Policy)
		}
		avail := "yes"
		if !s.Available {
			avail = "no"
		}
		if s.Locked {
			avail = "locked"
		}
		eff := "off"
		if s.Effective {
			eff = "ON"
		}
		rows = append(rows, []string{string(s.Key), strconv.FormatBool(s.Value), eff, origin, avail, s.Reason})
	}
	// Numeric options need no integration: what takes effect is the value.
	for _, n := range r.Numbers {
		origin := string(n.Origin)
		if n.Policy != "" {
			origin += " " + strconv.Quote(n.Policy)
		}
		rows = append(rows, []string{string(n.Key), strconv.Itoa(n.Value), strconv.Itoa(n.Effective), origin, "yes", ""})
	}
	a.table([]string{"OPTION", "VALUE", "TAKES EFFECT", "ORIGIN", "AVAILABLE", "REASON"}, rows)
	for _, w := range r.Warnings {
		fmt.Fprintln(a.stdout, "warning:", w)
	}
}

func (a *app) optionsCommand() *cobra.Command {
	c := &cobra.Command{Use: "options", Short: "Show and set a customer's Automatic Import Options"}
	var customer, typ string
	show := &cobra.Command{
		Use:   "show --customer C [--type end-user|admin]",
		Short: "Show the options in force: value, origin, availability and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			types, err := typesFlag(typ)
			if err != nil {
				return err
			}
			if customer == "" {
				return usageError{fmt.Errorf("options show needs --customer C")}
			}
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			cu, ok := t.Customer(customer)
			if !ok {
				return fmt.Errorf("no customer %q (autoimport customer list shows them)", customer)
			}
			var out []jobs.Resolved
			for _, ty := range types {
				out = append(out, jobs.Resolve(t, cu, ty))
			}
			if a.json() {
				return a.printJSON(out)
			}
			for i, r := range out {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				a.printResolved(r)
			}
			return nil
		},
	}
	show.Flags().StringVar(&customer, "customer", "", "customer id")
	show.Flags().StringVar(&typ, "type", "", "account type: end-user or admin (default both)")
	var setCustomer, setType string
	set := &cobra.Command{
		Use:   "set --customer C --type T key=value...",
		Short: "Set customer-specific options (only for a customer that follows no policy for the type)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if setCustomer == "" || setType == "" {
				return usageError{fmt.Errorf("options set needs --customer C and --type end-user|admin")}
			}
			ty, err := jobs.ParseAccountType(setType)
			if err != nil {
				return err
			}
			o, err := jobs.ParseAssignments(ty, args)
			if err != nil {
				return err
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if err := a.admin().SetCustomerOptionSet(cmd.Context(), setCustomer, ty, o); err != nil {
				return err
			}
			t, err := a.store.LoadTenant(cmd.Context())
			if err != nil {
				return err
			}
			cu, _ := t.Customer(setCustomer)
			r := jobs.Resolve(t, cu, ty)
			if a.json() {
				return a.printJSON(r)
			}
			a.printResolved(r)
			return nil
		},
	}
	set.Flags().StringVar(&setCustomer, "customer", "", "customer id")
	set.Flags().StringVar(&setType, "type", "", "account type: end-user or admin")
	c.AddCommand(show, set)
	return c
}

func typesFlag(s string) ([]jobs.AccountType, error) {
	if s == "" {
		return jobs.AccountTypes, nil
	}
	t, err := jobs.ParseAccountType(s)
	if err != nil {
		return nil, err
	}
	return []jobs.AccountType{t}, nil
}

func (a *app) policyCommand() *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Manage Automatic Import Policies"}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List policies with their members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			var out []policyRow
			for _, p := range t.Policies {
				out = append(out, policyRow{p, policyMembers(t, p)})
			}
			if a.json() {
				return a.printJSON(out)
			}
			var rows [][]string
			for _, p := range out {
				def := ""
				if p.Default {
					def = "default"
				}
				rows = append(rows, []string{p.Name, string(p.Type), def, strconv.Itoa(len(p.Members)), p.OptionSet().String()})
			}
			a.table([]string{"NAME", "TYPE", "DEFAULT", "CUSTOMERS", "OPTIONS"}, rows)
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy, its options and the customers that follow it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range t.Policies {
				if p.Name != args[0] {
					continue
				}
				members := policyMembers(t, p)
				if a.json() {
					return a.printJSON(map[string]any{"policy": p, "members": members})
				}
				def := ""
				if p.Default {
					def = " (default)"
				}
				fmt.Fprintf(a.stdout, "%s — %s policy%s\n%s\n\n", p.Name, p.Type, def, p.Description)
				var rows [][]string
				for _, k := range jobs.OptionKeys(p.Type) {
					v, set := p.Options[k]
					val := strconv.FormatBool(v)
					if !set {
						val = strconv.FormatBool(jobs.BuiltinDefaults(p.Type)[k]) + " (built-in)"
					}
					rows = append(rows, []string{string(k), val})
				}
				for _, k := range jobs.NumberKeys(p.Type) {
					n, set := p.Numbers[k]
					val := strconv.Itoa(n)
					if !set {
						val = strconv.Itoa(jobs.RangeOf(k).Default) + " (built-in)"
					}
					rows = append(rows, []string{string(k), val})
				}
				a.table([]string{"OPTION", "VALUE"}, rows)
				fmt.Fprintf(a.stdout, "\ncustomers: %s\n", strings.Join(members, ", "))
				return nil
			}
			return fmt.Errorf("no policy named %q (autoimport policy list shows them)", args[0])
		},
	})
	var ptype, desc string
	var makeDefault bool
	create := &cobra.Command{
		Use:   "create NAME --type end-user|admin [--description D] [--default] [key=value...]",
		Short: "Create a policy",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ty, err := jobs.ParseAccountType(ptype)
			if err != nil {
				return err
			}
			o := jobs.OptionSet{Values: jobs.Values{}}
			if len(args) > 1 {
				if o, err = jobs.ParseAssignments(ty, args[1:]); err != nil {
					return err
				}
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if err := a.admin().CreatePolicy(cmd.Context(), jobs.Policy{Name: args[0], Type: ty, Description: desc, Default: makeDefault, Options: o.Values, Numbers: o.Numbers}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created %s policy %q\n", ty, args[0])
			return nil
		},
	}
	create.Flags().StringVar(&ptype, "type", "", "account type: end-user or admin")
	create.Flags().StringVar(&desc, "description", "", "what the policy is for")
	create.Flags().BoolVar(&makeDefault, "default", false, "make it the default policy of its type")
	var setDesc string
	set := &cobra.Command{
		Use:   "set NAME key=value... [--description D]",
		Short: "Change a policy's options: every customer that follows it gets them for future imports",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.tenant(cmd.Context())
			if err != nil {
				return err
			}
			var ty jobs.AccountType
			for _, p := range t.Policies {
				if p.Name == args[0] {
					ty = p.Type
				}
			}
			if ty == "" {
				return fmt.Errorf("no policy named %q (autoimport policy list shows them)", args[0])
			}
			var o jobs.OptionSet
			if len(args) > 1 {
				if o, err = jobs.ParseAssignments(ty, args[1:]); err != nil {
					return err
				}
			}
			var d *string
			if cmd.Flags().Changed("description") {
				d = &setDesc
			}
			if o.IsZero() && d == nil {
				return usageError{fmt.Errorf("policy set needs key=value options or --description")}
			}
			if err := a.admin().SetPolicyOptions(cmd.Context(), args[0], o, d); err != nil {
				return err
			}
			// Numeric options are read when a rotation is due, not at import.
			future := "future imports"
			switch {
			case len(o.Numbers) > 0 && len(o.Values) > 0:
				future = "future imports and rotations"
			case len(o.Numbers) > 0:
				future = "future rotations"
			}
			fmt.Fprintf(a.stdout, "updated policy %q (%s of %d customers)\n", args[0], future, len(policyMembers(t, jobs.Policy{Name: args[0], Type: ty})))
			return nil
		},
	}
	set.Flags().StringVar(&setDesc, "description", "", "new description")
	var assignCustomer string
	assign := &cobra.Command{
		Use:   "assign NAME --customer C",
		Short: "Make a customer follow a policy for the policy's account type",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if assignCustomer == "" {
				return usageError{fmt.Errorf("policy assign needs --customer C")}
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if err := a.admin().AssignPolicy(cmd.Context(), assignCustomer, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "customer %s follows policy %q\n", assignCustomer, args[0])
			return nil
		},
	}
	assign.Flags().StringVar(&assignCustomer, "customer", "", "customer id")
	var unCustomer, unType string
	unassign := &cobra.Command{
		Use:   "unassign --customer C --type end-user|admin",
		Short: "Take a customer out of policies for a type; its own options start as the values it followed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if unCustomer == "" || unType == "" {
				return usageError{fmt.Errorf("policy unassign needs --customer C and --type end-user|admin")}
			}
			ty, err := jobs.ParseAccountType(unType)
			if err != nil {
				return err
			}
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if err := a.admin().UnassignPolicy(cmd.Context(), unCustomer, ty); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "customer %s follows no %s policy; change its options with autoimport options set --customer %s --type %s\n", unCustomer, ty, unCustomer, ty)
			return nil
		},
	}
	unassign.Flags().StringVar(&unCustomer, "customer", "", "customer id")
	unassign.Flags().StringVar(&unType, "type", "", "account type: end-user or admin")
	def := &cobra.Command{
		Use:   "default NAME",
		Short: "Make a policy the default of its account type (new customers follow it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setup(cmd.Context()); err != nil {
				return err
			}
			if err := a.admin().SetDefaultPolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "policy %q is now the default of its type\n", args[0])
			return nil
		},
	}
	c.AddCommand(create, set, assign, unassign, def)
	return c
}

// policyRow is a policy as policy list prints it, with its members.
type policyRow struct {
	jobs.Policy
	Members []string `json:"members"`
}

// MarshalJSON writes the policy's own document with members added last:
// the embedded Policy's MarshalJSON would otherwise drop them.
func (r policyRow) MarshalJSON() ([]byte, error) {
	p, err := json.Marshal(r.Policy)
	if err != nil {
		return nil, err
	}
	m, err := json.Marshal(r.Members)
	if err != nil {
		return nil, err
	}
	p = bytes.TrimSuffix(bytes.TrimSpace(p), []byte("}"))
	return append(append(append(p, `,"members":`...), m...), '}'), nil
}

// policyMembers lists the customers that follow a policy, explicitly or as
// the default.
func policyMembers(t *jobs.Tenant, p jobs.Policy) []string {
	var out []string
	for _, c := range t.Customers {
		if r := jobs.Resolve(t, c, p.Type); r.Policy == p.Name && (r.Origin == jobs.FromPolicy || r.Origin == jobs.FromDefaultPolicy) {
			out = append(out, c.ID)
		}
	}
	sort.Strings(out)
	return out
}

func (a *app) sealCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "seal",
		Short: "Seal a secret read from standard input with AUTOIMPORT_SECRET_KEY; prints sealed:... for the tenant file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := a.cfg
			if cfg.key == nil {
				return &ConfigError{Var: "AUTOIMPORT_SECRET_KEY", Want: describe("SecretKey") + "; it is needed to seal secrets"}
			}
			line, err := bufio.NewReader(a.stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				return usageError{fmt.Errorf("seal reads the secret from standard input; it was empty")}
			}
			fmt.Fprintln(a.stdout, string(cfg.key.SealRef(line)))
			return nil
		},
	}
}
