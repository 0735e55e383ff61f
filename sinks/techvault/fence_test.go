package techvault

import (
	"context"
	"errors"
	"testing"

	"github.com/msp-tools/autoimport/internal/fence"
	"github.com/msp-tools/autoimport/sinks"
)

// A write whose fence fails (its holder's lease ran out while it waited)
// leaves the vault as it was: no entry created, no password replaced.
func TestFencedWritesChangeNothing(t *testing.T) {
	ctx := context.Background()
	v := New(NewMemoryStore(), testKey(t, 3))
	scope := sinks.VaultScope{Customer: "acme", Container: "acme"}
	e, err := v.Create(ctx, scope, sinks.NewVaultEntry{Name: "Jane Doe (Active Directory)", Username: "jdoe", Category: sinks.CategoryFor("ad")})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetPassword(ctx, scope, e.Ref, "first-password", ""); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("the lease ran out")
	fenced := fence.With(ctx, func() error { return lost })

	if _, err := v.Create(fenced, scope, sinks.NewVaultEntry{Name: "Ann Lee (Active Directory)", Username: "alee", Category: sinks.CategoryFor("ad")}); !errors.Is(err, fence.ErrNotSent) || !errors.Is(err, lost) {
		t.Errorf("fenced Create: %v, want ErrNotSent and the fence's reason", err)
	}
	if ix, err := v.Index(ctx, scope); err != nil || ix.Len() != 1 {
		t.Errorf("after a fenced Create the index holds %v entries (%v), want the one before", ix.Len(), err)
	}
	if err := v.SetPassword(fenced, scope, e.Ref, "second-password", ""); !errors.Is(err, fence.ErrNotSent) {
		t.Errorf("fenced SetPassword: %v, want ErrNotSent", err)
	}
	if pw, err := v.Password(ctx, scope, e.Ref); err != nil || pw != "first-password" {
		t.Errorf("after a fenced SetPassword the entry holds %q (%v), want the password before", pw, err)
	}
}
