package autotask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
)

var _ sinks.ContactReader = (*Client)(nil)

// Contact reads contact ref with GET {zone}V1.0/Contacts/{id}, for a
// technician's manual match. Autotask answers an unknown id with
// {"item":null} (a 404 is taken the same way): sinks.ErrNotFound. A
// contact whose companyID is not the customer's company is
// sinks.ErrWrongCustomer, naming that company. Inactive contacts are
// returned, as Index lists them too.
func (c *Client) Contact(ctx context.Context, scope sinks.PSAScope, ref string) (sinks.Contact, error) {
	co, err := companyID(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	id, err := strconv.ParseInt(strings.TrimSpace(ref), 10, 64)
	if err != nil || id <= 0 {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: contact id %q is not a positive integer", Integration, scope.Customer, ref)
	}
	zone, err := c.Zone(ctx, scope.Customer)
	if err != nil {
		return sinks.Contact{}, err
	}
	op := fmt.Sprintf("read contact %d", id)
	req := restclient.Request{Method: http.MethodGet, URL: zone + "Contacts/" + strconv.FormatInt(id, 10), Header: c.header, Customer: scope.Customer}
	if !c.answered.Load() {
		// A 500 before any call succeeded is more likely bad credentials
		// than a passing fault: report it at once.
		req.Idempotent = new(bool)
	}
	var doc struct {
		Item json.RawMessage `json:"item"`
	}
	if _, err := c.rest.JSON(ctx, req, &doc); err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: Autotask has no contact %d", Integration, scope.Customer, op, sinks.ErrNotFound, id)
		}
		return sinks.Contact{}, c.wrapFirst(scope.Customer, op, err)
	}
	c.answered.Store(true)
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%s: customer %s: %s: %w: "+format, append([]any{Integration, scope.Customer, op, restclient.ErrMalformed}, args...)...)
	}
	switch strings.TrimSpace(string(doc.Item)) {
	case "":
		return sinks.Contact{}, malformed("no item member")
	case "null":
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: Autotask has no contact %d", Integration, scope.Customer, op, sinks.ErrNotFound, id)
	}
	var ct contact
	if err := json.Unmarshal(doc.Item, &ct); err != nil {
		return sinks.Contact{}, malformed("%v", err)
	}
	if ct.ID != id {
		return sinks.Contact{}, malformed("asked for contact %d, got %d", id, ct.ID)
	}
	if ct.CompanyID != co {
		owner := fmt.Sprintf("company %d", ct.CompanyID)
		if ct.CompanyID == 0 {
			owner = "no company"
		}
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: contact %d belongs to %s, not the customer's company %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, owner, co)
	}
	return ct.toContact(), nil
}
