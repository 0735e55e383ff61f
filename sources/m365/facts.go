package m365

import "strings"

// userFacts is what classifying a user needs of it, and all the local copy
// of an incremental read keeps per user: its serialisation (short names,
// empty values left out) is the copy's user document, so a 100,000-user
// tenant's copy stays small.
type userFacts struct {
	ID          string `json:"-"`
	UPN         string `json:"u,omitempty"`
	DisplayName string `json:"n,omitempty"`
	GivenName   string `json:"g,omitempty"`
	Surname     string `json:"s,omitempty"`
	Mail        string `json:"m,omitempty"`
	ImmutableID string `json:"i,omitempty"`
	// Disabled is accountEnabled false (absent or null counts as enabled).
	Disabled bool `json:"d,omitempty"`
	// Guest is userType "Guest".
	Guest bool `json:"t,omitempty"`
	// Synced is onPremisesSyncEnabled true.
	Synced bool `json:"o,omitempty"`
	// Licensed is at least one assigned licence.
	Licensed bool `json:"l,omitempty"`
}

// facts is what classification needs of a Graph user.
func (u User) facts() userFacts {
	return userFacts{
		ID:          u.ID,
		UPN:         u.UserPrincipalName,
		DisplayName: u.DisplayName,
		GivenName:   u.GivenName,
		Surname:     u.Surname,
		Mail:        u.Mail,
		ImmutableID: u.OnPremisesImmutableID,
		Disabled:    u.AccountEnabled != nil && !*u.AccountEnabled,
		Guest:       strings.EqualFold(u.UserType, "Guest"),
		Synced:      u.OnPremisesSyncEnabled != nil && *u.OnPremisesSyncEnabled,
		Licensed:    len(u.AssignedLicenses) > 0,
	}
}
