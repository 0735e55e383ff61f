package connectwise

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
)

var _ sinks.ContactReader = (*Client)(nil)

// Contact reads contact ref with GET /company/contacts/{id}, for a
// technician's manual match. A contact that does not exist is
// sinks.ErrNotFound; one whose company is not the customer's is
// sinks.ErrWrongCustomer, naming that company. Inactive contacts are
// returned, as Index lists them too.
func (c *Client) Contact(ctx context.Context, scope sinks.PSAScope, ref string) (sinks.Contact, error) {
	co, err := companyID(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	id, err := strconv.Atoi(strings.TrimSpace(ref))
	if err != nil || id <= 0 {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: contact id %q is not a positive integer", Integration, scope.Customer, ref)
	}
	op := fmt.Sprintf("read contact %d", id)
	q := url.Values{"fields": {"id,firstName,lastName,company/id,company/identifier,company/name,inactiveFlag,communicationItems"}}
	var rec struct {
		contact
		Company *struct {
			ID         int    `json:"id"`
			Identifier string `json:"identifier"`
			Name       string `json:"name"`
		} `json:"company"`
	}
	if _, err := c.rest.JSON(ctx, restclient.Request{Method: http.MethodGet, URL: fmt.Sprintf("%s/company/contacts/%d?%s", c.base, id, q.Encode()), Header: c.header, Customer: scope.Customer}, &rec); err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: ConnectWise has no contact %d (on cloud a wrong company id or API key can also answer 404)", Integration, scope.Customer, op, sinks.ErrNotFound, id)
		}
		return sinks.Contact{}, wrap(scope.Customer, op, err)
	}
	if rec.ID != id {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: asked for contact %d, got %d", Integration, scope.Customer, op, restclient.ErrMalformed, id, rec.ID)
	}
	switch {
	case rec.Company == nil || rec.Company.ID == 0:
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: contact %d belongs to no company, not the customer's company %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, co)
	case rec.Company.ID != co:
		owner := fmt.Sprintf("company %d", rec.Company.ID)
		if name := strings.TrimSpace(rec.Company.Name); name != "" {
			owner += fmt.Sprintf(" (%s)", name)
		} else if ident := strings.TrimSpace(rec.Company.Identifier); ident != "" {
			owner += fmt.Sprintf(" (%s)", ident)
		}
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: contact %d belongs to %s, not the customer's company %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, owner, co)
	}
	return c.toContact(rec.contact), nil
}
