package halopsa

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks"
)

var _ sinks.ContactReader = (*Client)(nil)

// Contact reads user ref with GET /api/Users/{id}, for a technician's
// manual match. A user that does not exist (404, or an answer without a
// user id) is sinks.ErrNotFound; one of another client is
// sinks.ErrWrongCustomer, naming that client. The user's site does not
// matter: Index lists every site's users. Inactive users are returned.
func (c *Client) Contact(ctx context.Context, scope sinks.PSAScope, ref string) (sinks.Contact, error) {
	clientID, _, err := clientSite(scope)
	if err != nil {
		return sinks.Contact{}, err
	}
	id, err := strconv.Atoi(strings.TrimSpace(ref))
	if err != nil || id <= 0 {
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: user id %q is not a positive integer", Integration, scope.Customer, ref)
	}
	op := fmt.Sprintf("read user %d", id)
	var u struct {
		user
		ClientName string `json:"client_name"`
	}
	if err := c.call(ctx, scope.Customer, op, restclient.Request{Method: http.MethodGet, URL: fmt.Sprintf("%s/Users/%d", c.api, id)}, &u); err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: Halo has no user %d", Integration, scope.Customer, op, sinks.ErrNotFound, id)
		}
		return sinks.Contact{}, err
	}
	switch {
	case u.ID == 0:
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: Halo answered without a user %d", Integration, scope.Customer, op, sinks.ErrNotFound, id)
	case u.ID != id:
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: asked for user %d, got %d", Integration, scope.Customer, op, restclient.ErrMalformed, id, u.ID)
	case u.ClientID != clientID:
		owner := fmt.Sprintf("client %d", u.ClientID)
		if u.ClientID == 0 {
			owner = "no client"
		} else if name := strings.TrimSpace(u.ClientName); name != "" {
			owner += fmt.Sprintf(" (%s)", name)
		}
		return sinks.Contact{}, fmt.Errorf("%s: customer %s: %s: %w: user %d belongs to %s, not the customer's client %d", Integration, scope.Customer, op, sinks.ErrWrongCustomer, id, owner, clientID)
	}
	return u.toContact(), nil
}
