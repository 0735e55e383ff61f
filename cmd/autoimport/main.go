// Command autoimport imports user accounts from customers' Active Directory
// and Microsoft 365 into the MSP's vaults and PSA under each customer's
// Automatic Import Options, and lets technicians verify and adjust those
// options.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// memoryLimit is Go's soft memory limit in force, 0 for none (see
// setMemoryLimit).
var memoryLimit int64

func main() {
	memoryLimit = setMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks bad command-line usage (exit status 2).
type usageError struct{ error }

// exitError carries an exit status without a message of its own (the
// command already said what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	app.close()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "autoimport:", err)
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "required flag") {
		return exitUsage
	}
	var ue usageError
	var jue *jobs.UsageError
	var ce *ConfigError
	var fe *jobs.FileError
	switch {
	case errors.As(err, &ue), errors.As(err, &jue), errors.As(err, &ce), errors.As(err, &fe):
		return exitUsage
	}
	return exitFailed
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "autoimport",
		Short:         "Import customers' AD and Microsoft 365 accounts into the vault and PSA under their Automatic Import Options",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if a.output != "text" && a.output != "json" {
			return usageError{fmt.Errorf("--output %q: want text or json", a.output)}
		}
		// Every command checks the environment, so a misspelt variable is
		// found at once, whatever the command.
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		a.cfg = cfg
		return nil
	}
	root.AddCommand(
		a.versionCommand(),
		a.migrateCommand(),
		a.applyCommand(),
		a.exportCommand(),
		a.customerCommand(),
		a.policyCommand(),
		a.optionsCommand(),
		a.auditCommand(),
		a.sealCommand(),
		a.runCommand(),
		a.accountsCommand(),
		a.rotateCommand(),
		a.vaultCommand(),
	)
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs turns cobra's argument-count errors into usage errors.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{fmt.Errorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}
