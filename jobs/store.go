package jobs

import (
	"context"
	"errors"
	"iter"
	"time"
)

// ErrNotFound is returned for a customer, policy or row that does not exist.
var ErrNotFound = errors.New("not found")

// Store is the persistence jobs needs. sql/store implements it on SQLite
// and MySQL/MariaDB.
type Store interface {
	StoreReader
	// Update runs fn in one transaction: every write and its audit events
	// are committed together or not at all.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// AuditEvents streams audit events in id order.
	AuditEvents(ctx context.Context, f AuditFilter) iter.Seq2[AuditEvent, error]
	// AcquireLease takes the lease on a customer for holder until ttl
	// from the database's now, under a new token, when it is free or
	// expired; false while another holder's lease lasts.
	AcquireLease(ctx context.Context, customer, holder string, ttl time.Duration) (token int64, ok bool, err error)
	// RenewLease extends holder's unexpired lease under token by ttl from
	// the database's now; false when holder no longer has it.
	RenewLease(ctx context.Context, customer, holder string, token int64, ttl time.Duration) (bool, error)
	// LeaseInfo says who holds a customer's lease and until when
	// (ErrNotFound when it was never taken).
	LeaseInfo(ctx context.Context, customer string) (LeaseInfo, error)
	// TakeOverLease gives holder, under a new token, the lease from
	// describes if it is still from's: the lease of a holder that is
	// provably gone.
	TakeOverLease(ctx context.Context, customer string, from LeaseInfo, holder string, ttl time.Duration) (token int64, ok bool, err error)
	// ReleaseLease gives up holder's lease on a customer.
	ReleaseLease(ctx context.Context, customer, holder string, token int64) error
	// StartRun and FinishRun record a (non-dry) run.
	StartRun(ctx context.Context, at time.Time) (int64, error)
	FinishRun(ctx context.Context, id int64, at time.Time, status string, summary string) error
	// Close releases the database.
	Close() error
}

// StoreReader reads the tenant and the ledger.
type StoreReader interface {
	// LoadTenant reads integrations, policies and customers with their
	// assignments and options.
	LoadTenant(ctx context.Context) (*Tenant, error)
	// ImportedAccounts streams one customer's ledger.
	ImportedAccounts(ctx context.Context, customer string) iter.Seq2[ImportedAccount, error]
	// LedgerEntries streams one customer's ledger like ImportedAccounts,
	// but without each account's options snapshot (Options is nil): what
	// import passes, rotations and roll-outs read, which never use it.
	LedgerEntries(ctx context.Context, customer string) iter.Seq2[ImportedAccount, error]
	// Attention lists the customer's accounts that need a person, as its
	// last pass left them.
	Attention(ctx context.Context, customer string) ([]AccountAttention, error)
	// Decisions lists the technicians' decisions about the customer's
	// accounts (matches and exclusions).
	Decisions(ctx context.Context, customer string) ([]AccountDecision, error)
	// Rotations lists the customer's administrators' latest rotations.
	Rotations(ctx context.Context, customer string) ([]PasswordRotation, error)
	// State reads a small per-customer value (delta links, the digest of
	// the last notices audited, the time of the last pass); "" when unset.
	State(ctx context.Context, customer, name string) (string, error)
	// CustomerVersion counts the committed transactions that changed
	// what an import pass reads of the customer besides its directories:
	// its configuration, ledger, accounts that need a person or decisions
	// (0: none yet). Reading it before and after tells whether any of
	// them changed between.
	CustomerVersion(ctx context.Context, customer string) (int64, error)
}

// Tx is a store transaction.
type Tx interface {
	StoreReader
	PutIntegrations(ctx context.Context, in Integrations) error
	PutPolicy(ctx context.Context, p Policy) error
	PutCustomer(ctx context.Context, c Customer) error
	// AppendAudit adds an event to its customer's chain (the tenant
	// chain for Customer ""); it fills At when zero. The event is chained
	// and written when the transaction ends, after fn: only then is the
	// chain's head locked, so that the lock is held for no more than the
	// transaction's own events and its commit. ID, Seq, PrevHash and Hash
	// are assigned then.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// LockChain locks a chain's head now (customer "" for the tenant
	// chain), for a transaction that reads what it then changes and
	// needs no other writer of that chain between: they wait until it
	// commits.
	LockChain(ctx context.Context, customer string) error
	// InsertImported records newly imported accounts.
	InsertImported(ctx context.Context, a ...ImportedAccount) error
	// SetSourceState records that an imported account is active, disabled
	// or missing in its source.
	SetSourceState(ctx context.Context, customer, source, sourceID, state string) error
	// SetWelcome records the welcome email's state of an imported account.
	SetWelcome(ctx context.Context, customer, source, sourceID, state string) error
	// SetWelcomeIf records the welcome email's state to of an imported
	// account only if it is from, and reports whether it did: the claim
	// that makes a welcome email be sent by one run only.
	SetWelcomeIf(ctx context.Context, customer, source, sourceID, from, to string) (bool, error)
	// SetLinks changes the vault entry and PSA contact an imported
	// account is linked to (a technician's re-link).
	SetLinks(ctx context.Context, a ImportedAccount) error
	// SetFlags changes the self-serve and rotation flags of an imported
	// account (a roll-out); its options snapshot stays as it was.
	SetFlags(ctx context.Context, customer, source, sourceID string, f Flags) error
	// PutAttention records that accounts need a person;
	// DeleteAttention that accounts of one source no longer do.
	PutAttention(ctx context.Context, a ...AccountAttention) error
	DeleteAttention(ctx context.Context, customer, source string, sourceIDs ...string) error
	// HoldLease fails with ErrLeaseLost unless holder still holds the
	// customer's lease under token (on the database's clock); no other
	// holder can take the lease until the transaction ends.
	HoldLease(ctx context.Context, customer, holder string, token int64) error
	// StartRotation records a new rotation of an account whose latest
	// rotation is closed (or that has none); ErrStale when one is open.
	StartRotation(ctx context.Context, r PasswordRotation) error
	// UpdateRotation records a rotation's new state if the row is still
	// the version from; ErrStale otherwise. SetRotated records when the
	// account's password was last rotated.
	UpdateRotation(ctx context.Context, r PasswordRotation, from RotationVersion) error
	SetRotated(ctx context.Context, customer, source, sourceID string, at time.Time) error
	// PutDecision records a technician's decision about an account,
	// replacing an earlier one; DeleteDecision withdraws it.
	PutDecision(ctx context.Context, d AccountDecision) error
	DeleteDecision(ctx context.Context, customer, source, sourceID string) error
	// PutState keeps a small per-customer value (see StoreReader.State).
	PutState(ctx context.Context, customer, name, value string) error
}

// AuditFilter narrows an audit listing.
type AuditFilter struct {
	Customer string
	// Subject keeps the events about one account ("ad:<guid>").
	Subject string
	AfterID int64
	Limit   int
}

// ImportedAccount is one row of the ledger: an account imported once, with
// the options it was imported under. Later option or policy changes never
// touch it.
type ImportedAccount struct {
	Customer    string      `json:"customer" db:"customer_id"`
	Source      string      `json:"source" db:"source"`
	SourceID    string      `json:"source_id" db:"source_id"`
	Type        AccountType `json:"type" db:"account_type"`
	Username    string      `json:"username" db:"username"`
	UPN         string      `json:"upn,omitempty" db:"upn"`
	DisplayName string      `json:"display_name,omitempty" db:"display_name"`
	Email       string      `json:"email,omitempty" db:"email"`
	// ImmutableID is the hybrid link key (base64 objectGUID).
	ImmutableID string `json:"immutable_id,omitempty" db:"immutable_id"`
	// M365ID is the linked Entra account's object id (m365_sync).
	M365ID string `json:"m365_id,omitempty" db:"m365_id"`

	VaultIntegration string `json:"vault_integration,omitempty" db:"vault_integration"`
	VaultRef         string `json:"vault_ref,omitempty" db:"vault_ref"`
	VaultName        string `json:"vault_name,omitempty" db:"vault_name"`
	PSAIntegration   string `json:"psa_integration,omitempty" db:"psa_integration"`
	PSARef           string `json:"psa_ref,omitempty" db:"psa_ref"`

	SelfServe bool `json:"self_serve" db:"self_serve"`
	Rotation  bool `json:"rotation" db:"rotation"`
	M365Sync  bool `json:"m365_sync" db:"m365_sync"`

	// Options is the snapshot of the effective options at import, and
	// OptionsOrigin where they came from ("policy Standard end users").
	Options       Values `json:"options" db:"-"`
	OptionsOrigin string `json:"options_origin" db:"options_origin"`

	// Welcome is the welcome email's state: none (no email for this
	// account), pending (due; the relay has not accepted it yet, and the
	// next run sends it), attempted (being sent, or handed to the relay
	// without a confirmation: never sent again), sent, or failed (refused
	// for this recipient for good: never sent again). See jobs/welcome.go.
	Welcome string `json:"welcome" db:"welcome_state"`
	// State is active, disabled or missing in the source.
	State      string    `json:"state" db:"source_state"`
	ImportedAt time.Time `json:"imported_at" db:"-"`
	// LastRotated is when the password was last rotated; zero when never.
	LastRotated time.Time `json:"last_rotated,omitzero" db:"-"`
	LastSeen    time.Time `json:"last_seen" db:"-"`
}
