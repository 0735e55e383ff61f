package hudu

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

// shownPassword is an asset password as GET /asset_passwords/{id} returns
// it, value included.
type shownPassword struct {
	AssetPassword
	CompanyName string
	Value       *string
}

// decodeShown decodes a show answer {"asset_password":{…}}. Errors never
// quote the body, which holds the password.
func decodeShown(body []byte) (shownPassword, error) {
	var doc struct {
		One *struct {
			assetPassword
			CompanyName *string `json:"company_name"`
			Password    *string `json:"password"`
		} `json:"asset_password"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return shownPassword{}, fmt.Errorf("%w: %s", restclient.ErrMalformed, syntaxOnly(err))
	}
	if doc.One == nil {
		return shownPassword{}, fmt.Errorf("%w: no asset_password member", restclient.ErrMalformed)
	}
	p, err := doc.One.decode()
	if err != nil {
		return shownPassword{}, err
	}
	if p.CompanyID <= 0 {
		return shownPassword{}, fmt.Errorf("%w: asset password %d has no company_id", restclient.ErrMalformed, p.ID)
	}
	return shownPassword{AssetPassword: p, CompanyName: str(doc.One.CompanyName), Value: doc.One.Password}, nil
}

// assetPasswordID reads an entry reference: Hudu ids are positive integers.
func assetPasswordID(customer, ref string) (int, error) {
	id, err := strconv.Atoi(strings.TrimSpace(ref))
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: customer %s: asset password id %q is not a positive integer", Integration, customer, ref)
	}
	return id, nil
}

// show reads asset password id and checks that autoimport may use it for
// the scope: it is in the customer's company and not archived.
func (c *Client) show(ctx context.Context, scope sinks.VaultScope, id int, op string) (shownPassword, error) {
	co, err := companyID(scope)
	if err != nil {
		return shownPassword{}, err
	}
	body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: fmt.Sprintf("%s/asset_passwords/%d", c.base, id), Header: c.header, Customer: scope.Customer, Secret: true})
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return shownPassword{}, fmt.Errorf("%s: customer %s: %s: %w: Hudu has no asset password %d", Integration, scope.Customer, op, sinks.ErrNotFound, id)
		}
		return shownPassword{}, wrap(scope.Customer, op, err)
	}
	p, err := decodeShown(body)
	if err != nil {
		return shownPassword{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodGet, Path: path, Status: status, Err: err})
	}
	if p.ID != id {
		return shownPassword{}, wrap(scope.Customer, op, &restclient.Error{Integration: Integration, Customer: scope.Customer, Method: http.MethodGet, Path: path, Status: status,
			Err: fmt.Errorf("%w: asked for asset password %d, got %d", restclient.ErrMalformed, id, p.ID)})
	}
	if p.CompanyID != co {
		owner := fmt.Sprintf("company %d", p.CompanyID)
		if p.CompanyName != "" {
			owner += fmt.Sprintf(" (%s)", p.CompanyName)
		}
		return shownPassword{}, fmt.Errorf("%s: customer %s: %s: %w: asset password %d is in %s, not in the customer's company %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, owner, co)
	}
	if p.Archived {
		return shownPassword{}, fmt.Errorf("%s: customer %s: %s: %w: asset password %d is archived", Integration, scope.Customer, op, sinks.ErrNotFound, id)
	}
	return p, nil
}

// Entry reads asset password ref of the customer's company, for a
// technician's manual match. One that does not exist or is archived is
// sinks.ErrNotFound; one of another company is sinks.ErrWrongCustomer.
func (c *Client) Entry(ctx context.Context, scope sinks.VaultScope, ref string) (sinks.VaultEntry, error) {
	id, err := assetPasswordID(scope.Customer, ref)
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	p, err := c.show(ctx, scope, id, fmt.Sprintf("read asset password %d", id))
	if err != nil {
		return sinks.VaultEntry{}, err
	}
	return p.entry(), nil
}

// SetPassword replaces the value of asset password ref, and its
// description when notes is not empty, with PUT /asset_passwords/{id}. The
// entry is read first, so that a value is never written into another
// company's entry or an archived one (the errors are Entry's), and its name
// and company_id are sent along as Hudu's client libraries do. The PUT is
// retried on 429 and 5xx: writing the same value again is harmless. The
// answer's body is not relied on; Password reads the value back.
func (c *Client) SetPassword(ctx context.Context, scope sinks.VaultScope, ref, password, notes string) error {
	id, err := assetPasswordID(scope.Customer, ref)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("set asset password %d", id)
	if password == "" || !utf8.ValidString(password) || !utf8.ValidString(notes) {
		return fmt.Errorf("%s: customer %s: %s: the password must be non-empty valid UTF-8, and the notes valid UTF-8", Integration, scope.Customer, op)
	}
	p, err := c.show(ctx, scope, id, op)
	if err != nil {
		return err
	}
	fields := map[string]any{"password": password, "company_id": p.CompanyID}
	if p.Name != "" {
		fields["name"] = p.Name
	}
	if notes != "" {
		fields["description"] = notes
	}
	hdr := c.header.Clone()
	hdr.Set("Content-Type", "application/json")
	_, _, _, err = c.read(ctx, restclient.Request{Method: http.MethodPut, URL: fmt.Sprintf("%s/asset_passwords/%d", c.base, id), Header: hdr, Body: map[string]any{"asset_password": fields}, Customer: scope.Customer, Secret: true})
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) {
			switch re.Status {
			case http.StatusNotFound:
				return fmt.Errorf("%s: customer %s: %s: %w: asset password %d was deleted while it was being written", Integration, scope.Customer, op, sinks.ErrNotFound, id)
			case http.StatusForbidden:
				op += " (writing passwords needs an API key with password access)"
			}
		}
		return wrap(scope.Customer, op, err)
	}
	return nil
}

// Password reads the current value of asset password ref.
func (c *Client) Password(ctx context.Context, scope sinks.VaultScope, ref string) (string, error) {
	id, err := assetPasswordID(scope.Customer, ref)
	if err != nil {
		return "", err
	}
	op := fmt.Sprintf("read the value of asset password %d", id)
	p, err := c.show(ctx, scope, id, op)
	if err != nil {
		return "", err
	}
	if p.Value == nil {
		return "", fmt.Errorf("%s: customer %s: %s: the answer carries no password; the API key may lack password access", Integration, scope.Customer, op)
	}
	return *p.Value, nil
}
