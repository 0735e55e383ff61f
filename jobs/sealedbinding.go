package jobs

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
)

// sealedBoundState marks, tenant-wide, that the values sealed before they
// were bound to their place have been sealed again for it.
const sealedBoundState = "sealed.bound"

// SealedRebinder seals again for its place every value of one customer
// that a sink keeps in the store sealed without a place (the Technician
// Vault's passwords), and says how many.
type SealedRebinder func(ctx context.Context, customer string) (int, error)

// BindSealedValues seals again, once, for its place, every value the store
// holds that was sealed before values were bound to their customer,
// account and field (the passwords of open rotations, and those of the
// sinks' rebinders), and audits it per customer.
// From then on a value without a place never opens: one copied into the
// database later, from a backup or another row, is refused, not re-bound.
// It returns how many values it sealed again (0 when done before).
func BindSealedValues(ctx context.Context, s Store, key *secret.Key, actor string, sinks ...SealedRebinder) (int, error) {
	if key == nil {
		return 0, nil
	}
	if done, err := s.State(ctx, "", sealedBoundState); err != nil || done != "" {
		return 0, err
	}
	t, err := s.LoadTenant(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, c := range t.Customers {
		rots, err := s.Rotations(ctx, c.ID)
		if err != nil {
			return total, err
		}
		var unbound []PasswordRotation
		for _, x := range rots {
			if x.Sealed != "" && !secret.Bound(x.Sealed) {
				unbound = append(unbound, x)
			}
		}
		inSinks := 0
		for _, rebind := range sinks {
			n, err := rebind(ctx, c.ID)
			inSinks += n
			if err != nil {
				return total, fmt.Errorf("bind sealed values to their place: %w", err)
			}
		}
		if len(unbound) == 0 && inSinks == 0 {
			continue
		}
		err = s.Update(ctx, func(tx Tx) error {
			for _, x := range unbound {
				pw, err := key.Open(x.Sealed)
				if err != nil {
					return fmt.Errorf("customer %s: %s: the password of its open rotation: %w", c.ID, x.Username, err)
				}
				from := x.Version()
				x.Sealed = key.SealFor(pw, sealedPlace(x))
				if err := tx.UpdateRotation(ctx, x, from); err != nil {
					return err
				}
			}
			_, err := tx.AppendAudit(ctx, AuditEvent{At: time.Now().UTC(), Actor: actor, Action: "store.sealed-bound", Customer: c.ID,
				After: doc(map[string]string{"rotations": strconv.Itoa(len(unbound)), "sink_values": strconv.Itoa(inSinks)})})
			return err
		})
		if err != nil {
			return total, fmt.Errorf("bind sealed values to their place: %w", err)
		}
		total += len(unbound) + inSinks
	}
	return total, s.Update(ctx, func(tx Tx) error { return tx.PutState(ctx, "", sealedBoundState, "1") })
}
