package connect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/ad"
	"github.com/msp-tools/autoimport/sources/m365"
)

// adDirectory sets administrators' passwords in Active Directory: LDAP
// unicodePwd over LDAPS or StartTLS only; a pending password took when it
// binds.
type adDirectory struct {
	src   *ad.Source
	bound *bindAccount
}

func (adDirectory) Name() string { return "Active Directory" }

// CloseIdleConnections closes the connections the source keeps between
// password exchanges, when a rotation is done with them.
func (d adDirectory) CloseIdleConnections() { d.src.CloseIdleConnections() }

func adTarget(a jobs.ImportedAccount) ad.PasswordTarget {
	return ad.PasswordTarget{ObjectGUID: a.SourceID, Username: a.Username}
}

func (d adDirectory) Status(ctx context.Context, a jobs.ImportedAccount) (jobs.DirectoryStatus, error) {
	st, err := d.src.Lookup(ctx, adTarget(a))
	if err != nil {
		return jobs.DirectoryStatus{}, err
	}
	out := jobs.DirectoryStatus{Exists: st.State != ad.AccountMissing, Enabled: st.State == ad.AccountEnabled}
	if out.Exists {
		if self, err := d.bound.is(ctx, d.src, st.ObjectGUID); err != nil || self {
			out.NotHere = jobs.ReasonBindAccount
			return out, err
		}
	}
	return out, nil
}

func (adDirectory) Mark(context.Context, jobs.ImportedAccount) (string, error) { return "", nil }

func (d adDirectory) SetPassword(ctx context.Context, a jobs.ImportedAccount, pw string) error {
	err := d.src.SetPassword(ctx, adTarget(a), pw)
	var pe *ad.PolicyError
	return directoryError(err, errors.As(err, &pe), ad.ErrOutcomeUnknown)
}

// directoryError marks a directory client's error as rotation reads it:
// refused by the password policy (nothing changed), or sent without an
// answer (unknown, the client's own sentinel); any other error means
// nothing changed.
func directoryError(err error, refused bool, unknown error) error {
	switch {
	case err == nil:
		return nil
	case refused:
		return fmt.Errorf("%w: %w", jobs.ErrPasswordRefused, err)
	case errors.Is(err, unknown):
		return fmt.Errorf("%w: %w", jobs.ErrOutcomeUnknown, err)
	}
	return err
}

// Took binds as the account with the pending password: the proof that it
// is the account's password now.
func (d adDirectory) Took(ctx context.Context, a jobs.ImportedAccount, pw, _ string) (bool, error) {
	return d.src.CheckPassword(ctx, adTarget(a), pw)
}

// m365Directory sets cloud-only administrators' passwords through Graph;
// a pending password took when the user's lastPasswordChangeDateTime is
// later than it was before the change.
type m365Directory struct{ src *m365.Source }

func (m365Directory) Name() string { return "Microsoft 365" }

func (d m365Directory) Status(ctx context.Context, a jobs.ImportedAccount) (jobs.DirectoryStatus, error) {
	st, err := d.src.Lookup(ctx, a.SourceID)
	if err != nil {
		return jobs.DirectoryStatus{}, err
	}
	out := jobs.DirectoryStatus{Exists: st.State != m365.UserMissing, Enabled: st.State == m365.UserEnabled}
	if st.OnPremisesSynced {
		out.NotHere = "the user is synced from on-premises Active Directory: its password can only be rotated in AD (import it from the AD source)"
	}
	return out, nil
}

func (d m365Directory) Mark(ctx context.Context, a jobs.ImportedAccount) (string, error) {
	t, err := d.src.LastPasswordChange(ctx, a.SourceID)
	if err != nil {
		return "", err
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

func (d m365Directory) SetPassword(ctx context.Context, a jobs.ImportedAccount, pw string) error {
	err := d.src.SetPassword(ctx, a.SourceID, pw)
	var pe *m365.PolicyError
	return directoryError(err, errors.As(err, &pe), m365.ErrOutcomeUnknown)
}

func (d m365Directory) Took(ctx context.Context, a jobs.ImportedAccount, _, marker string) (bool, error) {
	before, err := time.Parse(time.RFC3339Nano, marker)
	if err != nil && marker != "" {
		return false, fmt.Errorf("the rotation's marker %q is not a time: %w", marker, err)
	}
	now, err := d.src.LastPasswordChange(ctx, a.SourceID)
	if err != nil {
		return false, err
	}
	return now.After(before), nil
}
