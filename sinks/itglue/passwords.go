package itglue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
)

var (
	_ sinks.VaultEntryReader = (*Client)(nil)
	_ sinks.PasswordWriter   = (*Client)(nil)
)

// shown is a password resource as GET /passwords/{id} returns it.
type shown struct {
	Password
	OrganizationID   string
	OrganizationName string
	// Value is the password, nil when the answer carries none (it was not
	// asked for, or the key lacks Password Access).
	Value *string
}

// decodeShown decodes a show answer {"data":{…}}. Errors never quote the
// body, which may hold the password.
func decodeShown(body []byte) (shown, error) {
	pw, err := DecodePassword(body)
	if err != nil {
		return shown{}, err
	}
	type extra struct {
		Attributes struct {
			OrganizationID   flexID  `json:"organization-id"`
			OrganizationName *string `json:"organization-name"`
			Value            *string `json:"password"`
		} `json:"attributes"`
	}
	var one struct {
		Data extra `json:"data"`
	}
	var many struct {
		Data []extra `json:"data"`
	}
	// DecodePassword accepted data as an object or an array of one.
	if json.Unmarshal(body, &one) != nil {
		if json.Unmarshal(body, &many) != nil || len(many.Data) != 1 {
			return shown{}, fmt.Errorf("%w: password %s: organization-id or password is not of the documented type", restclient.ErrMalformed, pw.ID)
		}
		one.Data = many.Data[0]
	}
	a := one.Data.Attributes
	if a.OrganizationID == "" {
		return shown{}, fmt.Errorf("%w: password %s has no organization-id", restclient.ErrMalformed, pw.ID)
	}
	return shown{Password: pw, OrganizationID: string(a.OrganizationID), OrganizationName: str(a.OrganizationName), Value: a.Value}, nil
}

// passwordID reads an entry reference: IT Glue password ids are positive
// integers.
func passwordID(customer, ref string) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(ref))
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: password id %q is not a positive integer", Integration, customer, ref)
	}
	return id, nil
}

// show reads password id and checks that autoimport may use it for the
// scope: it is in the customer's organization, and it is not archived,
// personal or restricted (the entries Index leaves out of matching).
func (c *Client) show(ctx context.Context, scope sinks.VaultScope, id int, withValue bool, op string) (shown, error) {
	org, err := orgID(scope)
	if err != nil {
		return shown{}, err
	}
	u := fmt.Sprintf("%s/passwords/%d?show_password=%t", c.base, id, withValue)
	body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: u, Header: c.header, Customer: scope.Customer, Secret: true})
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return shown{}, fmt.Errorf("%s: customer %s: %s: %w: IT Glue has no password %d (or the API key may not see it)", Integration, scope.Customer, op, sinks.ErrNotFound, id)
		}
		return shown{}, wrap(scope.Customer, op, err)
	}
	sh, err := decodeShown(body)
	if err != nil {
		return shown{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodGet, Path: path, Status: status, Err: err})
	}
	if sh.ID != strconv.Itoa(id) {
		return shown{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodGet, Path: path, Status: status,
			Err: fmt.Errorf("%w: asked for password %d, got %s", restclient.ErrMalformed, id, sh.ID)})
	}
	if sh.OrganizationID != strconv.Itoa(org) {
		owner := "organization " + sh.OrganizationID
		if sh.OrganizationName != "" {
			owner += fmt.Sprintf(" (%s)", sh.OrganizationName)
		}
		return shown{}, fmt.Errorf("%s: customer %s: %s: %w: password %d is in %s, not in the customer's organization %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, owner, org)
	}
	var why string
	switch {
	case sh.Archived:
		why = "is archived"
	case sh.MyGlue:
		why = "is a personal (My Glue) entry, which autoimport never uses"
	case sh.Restricted:
		why = "is restricted to chosen users, which autoimport never uses"
	}
	if why != "" {
		return shown{}, fmt.Errorf("%s: customer %s: %s: %w: password %d %s", Integration, scope.Customer, op, sinks.ErrNotFound, id, why)
	}
	return sh, nil
}

// Entry reads password ref of the customer's organization, for a
// technician's manual match. An entry that does not exist, or is archived,
// personal or restricted, is sinks.ErrNotFound; one of another
// organization is sinks.ErrWrongCustomer. The value is not read.
func (c *Client) Entry(ctx context.Context, scope sinks.VaultScope, ref string) (sinks.VaultEntry, error) {
	id, err := passwordID(scope.Customer, ref)
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	op := fmt.Sprintf("read password %d", id)
	sh, err := c.show(ctx, scope, id, false, op)
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	e := sh.entry()
	if sh.CategoryName == "" && sh.CategoryID != "" {
		// The answer named the category by id only.
		if err := c.loadCategories(ctx, scope.Customer); err != nil {
			return sinks.VaultEntry{}, wrap(scope.Customer, op+": list password categories", err)
		}
		c.mu.Lock()
		e.Category = c.byID[sh.CategoryID]
		c.mu.Unlock()
	}
	return e, nil
}

// SetPassword replaces the value of password ref, and its notes when notes
// is not empty, with PATCH /passwords/{id}. The entry is read first, so
// that a value is never written into another organization's entry or an
// archived, personal or restricted one (the errors are Entry's). The PATCH
// is retried on 429 and 5xx: writing the same value again is harmless.
func (c *Client) SetPassword(ctx context.Context, scope sinks.VaultScope, ref, password, notes string) error {
	id, err := passwordID(scope.Customer, ref)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("set password %d", id)
	if password == "" || !utf8.ValidString(password) || !utf8.ValidString(notes) {
		return fmt.Errorf("%s: customer %s: %s: the password must be non-empty valid UTF-8, and the notes valid UTF-8", Integration, scope.Customer, op)
	}
	if _, err := c.show(ctx, scope, id, false, op); err != nil {
		return err
	}
	attrs := map[string]string{"password": password}
	if notes != "" {
		attrs["notes"] = notes
	}
	body := map[string]any{"data": map[string]any{"type": "passwords", "attributes": attrs}}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", MediaType)
	_, _, _, err = c.read(ctx, restclient.Request{Method: http.MethodPatch, URL: fmt.Sprintf("%s/passwords/%d", c.base, id), Header: hdr, Body: body, Customer: scope.Customer, Secret: true})
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) {
			switch re.Status {
			case http.StatusNotFound:
				return fmt.Errorf("%s: customer %s: %s: %w: password %d was deleted while it was being written", Integration, scope.Customer, op, sinks.ErrNotFound, id)
			case http.StatusForbidden, http.StatusUnauthorized:
				op += " (writing passwords needs the API key's Password Access option)"
			}
		}
		return wrap(scope.Customer, op, err)
	}
	return nil
}

// Password reads the current value of password ref with show_password=true.
// The key needs Password Access; without it IT Glue answers without the
// value, which is an error here.
func (c *Client) Password(ctx context.Context, scope sinks.VaultScope, ref string) (string, error) {
	id, err := passwordID(scope.Customer, ref)
	if err != nil {
		return "", err
	}
	op := fmt.Sprintf("read the value of password %d", id)
	sh, err := c.show(ctx, scope, id, true, op)
	if err != nil {
		return "", err
	}
	if sh.Value == nil {
		return "", fmt.Errorf("%s: customer %s: %s: the answer carries no value; the API key needs the Password Access option", Integration, scope.Customer, op)
	}
	return *sh.Value, nil
}
