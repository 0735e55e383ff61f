package connect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/msp-tools/autoimport/jobs"
	"github.com/msp-tools/autoimport/sources/ad"
)

// adSource is a customer's Active Directory as an import reads it: its
// accounts, and the account autoimport binds as, which the import keeps
// so that rotation never changes that account's password.
type adSource struct{ *ad.Source }

// BindAccount finds the account bind_dn names in the directory; one the
// directory does not hold wraps jobs.ErrNotFound.
func (s adSource) BindAccount(ctx context.Context) (jobs.BindAccount, error) {
	b, err := s.BindIdentity(ctx)
	if errors.Is(err, ad.ErrNotFound) {
		return jobs.BindAccount{}, fmt.Errorf("%w: %w", jobs.ErrNotFound, err)
	}
	if err != nil {
		return jobs.BindAccount{}, err
	}
	return jobs.BindAccount{ObjectGUID: b.ObjectGUID, DN: b.DN, Username: b.Username, UPN: b.UPN}, nil
}

// bindAccount is the objectGUID of the account a rotation pass binds as,
// found once per pass: the last check before a password is set, whatever
// the import recorded.
type bindAccount struct {
	once sync.Once
	guid string
	err  error
}

// is reports whether the account of objectGUID guid is the one src binds
// as. A bind account the directory does not hold is no account of it.
func (b *bindAccount) is(ctx context.Context, src *ad.Source, guid string) (bool, error) {
	b.once.Do(func() {
		id, err := src.BindIdentity(ctx)
		switch {
		case errors.Is(err, ad.ErrNotFound):
		case err != nil:
			b.err = fmt.Errorf("cannot tell whether %s: %w", jobs.ReasonBindAccount, err)
		default:
			b.guid = id.ObjectGUID
		}
	})
	return b.guid != "" && strings.EqualFold(b.guid, guid), b.err
}
