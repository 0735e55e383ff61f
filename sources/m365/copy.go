package m365

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/msp-tools/autoimport/sources"
)

// The local copy of a tenant (sources.CopyStore, source "m365") holds
// every user (userFacts), group (groupDoc) and activated directory role
// (roleDoc), and the direct memberships between them: group → member
// (user or group) and role → member (user or role-assignable group).
// Nothing in it depends on the selection; the selection and the
// administrators are computed from it (CopyAccounts).

// copySource is the copy's source name in the store.
const copySource = string(sources.KindM365)

// The kinds of the copy's objects.
const (
	kindUser  = "user"
	kindGroup = "group"
	kindRole  = "role"
)

// groupDoc is a group in the copy.
type groupDoc struct {
	Name string `json:"n,omitempty"`
}

// roleDoc is an activated directory role in the copy.
type roleDoc struct {
	Name     string `json:"n,omitempty"`
	Template string `json:"t,omitempty"`
}

// The $select of each delta round. users/delta tracks only these
// properties (the ones userFacts keeps): a change to another never
// surfaces, and costs nothing.
const (
	deltaUserSelect = "id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,userType," +
		"onPremisesSyncEnabled,onPremisesImmutableId,assignedLicenses"
	groupSelect = "id,displayName,members"
	// directoryRoles/delta is asked without $select: a role has four
	// properties, and members@delta comes with all of them.
	roleSelect = ""
)

// copyFormat names what the copy holds and how the rounds are asked for;
// a position written under another format is not resumed (the next read
// is full), so a change to the $select or to the documents cannot mix
// with a copy made before it.
var copyFormat = func() string {
	h := sha256.Sum256([]byte("m365 copy 1\x00" + deltaUserSelect + "\x00" + groupSelect + "\x00" + roleSelect))
	return hex.EncodeToString(h[:8])
}()

// position is where the next incremental read resumes: the delta link of
// each round (sources.SyncState.Token).
type position struct {
	Format string `json:"format"`
	Users  string `json:"users"`
	Groups string `json:"groups"`
	Roles  string `json:"roles"`
	// Lookups are the users and groups ("users/{id}", "groups/{id}")
	// whose memberships the last round asked for and Graph answered 404:
	// gone since, or not replicated yet to the replica that answered
	// (Entra is eventually consistent). The next round asks again, unless
	// it says they are gone (see readNewMemberships).
	Lookups []string `json:"lookups,omitempty"`
	// Unread are the users a round saw only in part, new to the copy,
	// that Graph answered 404 when they were read whole (gone, or not
	// replicated yet): the next round reads them again, unless it says
	// they are gone (see readIncompleteUsers).
	Unread []string `json:"unread,omitempty"`
}

func (p position) encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

// decodePosition reads a stored position; an error says why it cannot be
// resumed.
func decodePosition(token []byte) (position, error) {
	var p position
	if err := json.Unmarshal(token, &p); err != nil {
		return position{}, fmt.Errorf("unreadable: %v", err)
	}
	switch {
	case p.Format != copyFormat:
		return position{}, errors.New("written for other fields or another copy format")
	case p.Users == "" || p.Groups == "" || p.Roles == "":
		return position{}, errors.New("incomplete")
	}
	return p, nil
}

// selectionDigest identifies a selection (and the privileged roles that
// classify it), so a changed one forces a full read.
func (s *Source) selectionDigest(sel sources.Selection) string {
	b, _ := json.Marshal(struct {
		Sel        sources.Selection
		Privileged []string
	}{sel, s.cfg.PrivilegedRoles})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
