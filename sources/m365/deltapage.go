package m365

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// A delta round's objects may be partial ("at least the properties that
// have been updated"), so its decoder tells an absent property, which
// leaves the copy's value alone, from a null one, which clears it.

// optString is a string property of a delta object: absent, null or set.
type optString struct {
	set bool
	v   string
}

func (o *optString) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		o.v = ""
		return nil
	}
	// The common case, a string without escapes, without a second
	// decoder (the outer one has checked the syntax).
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		o.v = string(b[1 : len(b)-1])
		return nil
	}
	return json.Unmarshal(b, &o.v)
}

// optBool is a boolean property of a delta object: absent, null or set.
type optBool struct {
	set, null, v bool
}

func (o *optBool) UnmarshalJSON(b []byte) error {
	o.set = true
	switch string(b) {
	case "null":
		o.null, o.v = true, false
		return nil
	case "true", "false":
		o.null, o.v = false, string(b) == "true"
		return nil
	}
	return fmt.Errorf("%s is not a boolean", b)
}

// optCount is an array property of a delta object of which only the
// length matters (assignedLicenses): absent, or set with a length.
type optCount struct {
	set bool
	n   int
}

func (o *optCount) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		o.n = 0
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return err
	}
	o.n = len(elems)
	return nil
}

// deltaUser is one object of a users/delta page.
type deltaUser struct {
	ID                    string    `json:"id"`
	UserPrincipalName     optString `json:"userPrincipalName"`
	DisplayName           optString `json:"displayName"`
	GivenName             optString `json:"givenName"`
	Surname               optString `json:"surname"`
	Mail                  optString `json:"mail"`
	UserType              optString `json:"userType"`
	OnPremisesImmutableID optString `json:"onPremisesImmutableId"`
	AccountEnabled        optBool   `json:"accountEnabled"`
	OnPremisesSyncEnabled optBool   `json:"onPremisesSyncEnabled"`
	AssignedLicenses      optCount  `json:"assignedLicenses"`
	Removed               *Removal  `json:"@removed"`
}

// The user properties the copy keeps, as bits of a userChange's have.
const (
	hasUPN = 1 << iota
	hasDisplayName
	hasGivenName
	hasSurname
	hasMail
	hasUserType
	hasImmutableID
	hasAccountEnabled
	hasSyncEnabled
	hasLicenses

	hasAllUser = hasUPN | hasDisplayName | hasGivenName | hasSurname | hasMail | hasUserType |
		hasImmutableID | hasAccountEnabled | hasSyncEnabled | hasLicenses
)

// mergeInto sets the properties d carries on f and marks them in have.
func (d *deltaUser) mergeInto(f *userFacts, have *uint16) {
	str := func(o optString, dst *string, bit uint16) {
		if o.set {
			*dst = o.v
			*have |= bit
		}
	}
	str(d.UserPrincipalName, &f.UPN, hasUPN)
	str(d.DisplayName, &f.DisplayName, hasDisplayName)
	str(d.GivenName, &f.GivenName, hasGivenName)
	str(d.Surname, &f.Surname, hasSurname)
	str(d.Mail, &f.Mail, hasMail)
	str(d.OnPremisesImmutableID, &f.ImmutableID, hasImmutableID)
	if d.UserType.set {
		f.Guest = strings.EqualFold(d.UserType.v, "Guest")
		*have |= hasUserType
	}
	if d.AccountEnabled.set {
		f.Disabled = !d.AccountEnabled.null && !d.AccountEnabled.v
		*have |= hasAccountEnabled
	}
	if d.OnPremisesSyncEnabled.set {
		f.Synced = !d.OnPremisesSyncEnabled.null && d.OnPremisesSyncEnabled.v
		*have |= hasSyncEnabled
	}
	if d.AssignedLicenses.set {
		f.Licensed = d.AssignedLicenses.n > 0
		*have |= hasLicenses
	}
}

// deltaObject is one object of a groups/delta or directoryRoles/delta
// page: a group or role, with its share of members@delta.
type deltaObject struct {
	ID             string        `json:"id"`
	DisplayName    optString     `json:"displayName"`
	RoleTemplateID optString     `json:"roleTemplateId"`
	Members        []deltaMember `json:"members@delta"`
	Removed        *Removal      `json:"@removed"`
}

// deltaMember is one entry of members@delta: a member added, or removed
// when it carries @removed.
type deltaMember struct {
	ODataType memberType `json:"@odata.type"`
	ID        string     `json:"id"`
	Removed   *Removal   `json:"@removed"`
}

// memberType is a member's @odata.type, told apart without keeping a
// string per member.
type memberType uint8

const (
	unknownMember memberType = iota // absent
	userMember
	groupMember
	otherMember // a device, contact, service principal, ...
)

func (t *memberType) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `null`:
		*t = unknownMember
	case `"#microsoft.graph.user"`:
		*t = userMember
	case `"#microsoft.graph.group"`:
		*t = groupMember
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = otherMember
	}
	return nil
}

// deltaPage is one page of a delta round.
type deltaPage[T any] struct {
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
	Value     *[]T   `json:"value"`
}

// decodeDeltaPage decodes one page of a delta round of users (T
// deltaUser) or of groups or roles (T deltaObject). Anything but a Graph
// collection of objects with ids, ending in exactly one of nextLink and
// deltaLink, is malformed: a delta round that skipped what it could not
// read would lose that change for good.
func decodeDeltaPage[T deltaUser | deltaObject](body []byte) (items []T, next, deltaLink string, err error) {
	var p deltaPage[T]
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	switch {
	case p.Value == nil:
		return nil, "", "", fmt.Errorf("%w: no \"value\" array", restclient.ErrMalformed)
	case p.NextLink == "" && p.DeltaLink == "":
		return nil, "", "", fmt.Errorf("%w: neither @odata.nextLink nor @odata.deltaLink", restclient.ErrMalformed)
	case p.NextLink != "" && p.DeltaLink != "":
		return nil, "", "", fmt.Errorf("%w: both @odata.nextLink and @odata.deltaLink", restclient.ErrMalformed)
	}
	for i := range *p.Value {
		switch o := any(&(*p.Value)[i]).(type) {
		case *deltaUser:
			if o.ID == "" {
				return nil, "", "", fmt.Errorf("%w: object %d has no id", restclient.ErrMalformed, i)
			}
		case *deltaObject:
			if o.ID == "" {
				return nil, "", "", fmt.Errorf("%w: object %d has no id", restclient.ErrMalformed, i)
			}
			for j, m := range o.Members {
				if m.ID == "" {
					return nil, "", "", fmt.Errorf("%w: object %s: member %d has no id", restclient.ErrMalformed, o.ID, j)
				}
			}
		}
	}
	return *p.Value, p.NextLink, p.DeltaLink, nil
}
