package jobs

import "time"

// The states of an account that autoimport knows for a customer, as
// `accounts list` shows them. Imported accounts are in the ledger (their
// source state gives disabled and missing); the others are kept in the
// store between runs.
const (
	StateImported          = "imported"
	StateAmbiguous         = "ambiguous"
	StatePossibleDuplicate = "possible-duplicate"
	StateHeld              = "held"
	StateFailed            = "failed"
	StateIgnored           = "ignored"
	StateMissing           = "missing"
	StateDisabled          = "disabled"
)

// AccountStates lists every state in the order a listing shows them.
var AccountStates = []string{StateAmbiguous, StatePossibleDuplicate, StateHeld, StateFailed, StateIgnored, StateImported, StateDisabled, StateMissing}

// AccountAttention is an account that needs a person, as the last pass of
// its customer left it.
type AccountAttention struct {
	Customer    string      `json:"customer"`
	Source      string      `json:"source"`
	SourceID    string      `json:"source_id"`
	Type        AccountType `json:"type"`
	Username    string      `json:"username"`
	DisplayName string      `json:"display_name,omitempty"`
	Email       string      `json:"email,omitempty"`
	State       string      `json:"state"`
	Reason      string      `json:"reason"`
	// Since is when the account entered this state.
	Since time.Time `json:"since"`
}

// The kinds of AccountDecision.
const (
	DecisionMatch  = "match"
	DecisionIgnore = "ignore"
)

// AccountDecision is a technician's decision about one account: the vault
// entry and PSA contact to use (or to create one), or to ignore it. Every
// run honours it.
type AccountDecision struct {
	Customer string `json:"customer"`
	Source   string `json:"source"`
	SourceID string `json:"source_id"`
	Username string `json:"username"`
	Kind     string `json:"decision"`
	// VaultRef is the chosen entry, or VaultCreate asks for a new one even
	// where several entries fit; likewise for the PSA.
	VaultRef    string    `json:"vault_ref,omitempty"`
	VaultCreate bool      `json:"vault_create,omitempty"`
	PSARef      string    `json:"psa_ref,omitempty"`
	PSACreate   bool      `json:"psa_create,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Actor       string    `json:"actor"`
	At          time.Time `json:"at"`
}

// key is the account the decision is about.
func (d AccountDecision) key() ledgerKey { return ledgerKey{d.Source, d.SourceID} }
