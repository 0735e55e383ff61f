package m365

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
	"golang.org/x/sync/errgroup"
)

// readNewMemberships reads the direct groups and roles of the users an
// incremental round brought that the copy does not hold: new hires, and
// users restored from the deleted items. Microsoft documents that a
// deleted user's memberships show as removed in groups/delta and
// directoryRoles/delta, not whether its restoration sends them again; the
// copy dropped them with the user, so it asks the user's memberOf instead
// of trusting the rounds' silence. What a round said of a membership wins
// (it may be newer than memberOf, which Graph answers from a replica);
// memberOf adds only the memberships the round said nothing about. One
// request per new user (more for one in over 999 groups and roles),
// memberOfAtOnce at a time.
func (r *deltaReader) readNewMemberships(ctx context.Context, copies sources.CopyStore, customer string, cs *changeSet) error {
	var ids []string
	for id, c := range cs.users {
		if !c.removed {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	held, err := copies.CopyHolds(ctx, customer, copySource, ids)
	if err != nil {
		return fmt.Errorf("Microsoft 365: customer %s: read the local copy: %w", customer, err)
	}
	var fresh []string
	for _, id := range ids {
		if !held[id] {
			fresh = append(fresh, id)
		}
	}
	// A few users' lookups at once, each its own round trip; their
	// answers are merged in the users' order once all are in.
	groups := make([][]string, len(fresh))
	requests := make([]int, len(fresh))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(memberOfAtOnce)
	for i, id := range fresh {
		g.Go(func() error {
			var err error
			groups[i], requests[i], err = r.s.memberOf(gctx, id)
			return err
		})
	}
	err = g.Wait()
	for _, n := range requests {
		r.requests += n
	}
	if err != nil {
		return err
	}
	for i, id := range fresh {
		m := uint64(cs.number(id))
		for _, grp := range groups[i] { // none for a user gone since the round: the next round says so
			k := uint64(cs.number(grp))<<32 | m
			if _, said := cs.links[k]; !said {
				cs.links[k] = true
			}
		}
	}
	return nil
}

// memberOfAtOnce is how many users' memberOf one read asks at once.
const memberOfAtOnce = 4

// memberOf reads the ids of the groups and directory roles a user is a
// direct member of (GET /users/{id}/memberOf), and how many requests that
// took; none when the user no longer exists.
func (s *Source) memberOf(ctx context.Context, id string) (ids []string, requests int, err error) {
	op := "list the groups and roles of user " + id
	next := s.graphURL("/users/"+url.PathEscape(id)+"/memberOf", url.Values{"$select": {"id"}, "$top": {strconv.Itoa(MaxPageSize)}})
	for next != "" {
		if requests >= s.cfg.MaxPages {
			return nil, requests, s.graphError(op, errors.New("too many pages"))
		}
		if err := s.checkLink(next); err != nil {
			return nil, requests, s.graphError(op, err)
		}
		requests++
		body, err := s.get(ctx, next, nil, nil)
		if err != nil {
			var re *restclient.Error
			if errors.As(err, &re) && re.Status == http.StatusNotFound {
				return nil, requests, nil
			}
			return nil, requests, s.graphError(op, err)
		}
		var page []string
		if page, next, err = decodeMemberOfPage(body); err != nil {
			return nil, requests, s.graphError(op, err)
		}
		ids = append(ids, page...)
	}
	return ids, requests, nil
}

// decodeMemberOfPage reads one page of memberOf: the ids of its groups
// and directory roles (administrative units and anything else left out)
// and the next page's link. A page that is not one, or a group or role
// without an id, is malformed.
func decodeMemberOfPage(body []byte) (ids []string, next string, err error) {
	var page struct {
		Value *[]struct {
			Type string `json:"@odata.type"`
			ID   string `json:"id"`
		} `json:"value"`
		NextLink string `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if page.Value == nil {
		return nil, "", fmt.Errorf(`%w: no "value" array`, restclient.ErrMalformed)
	}
	for _, o := range *page.Value {
		switch o.Type {
		case "#microsoft.graph.group", "#microsoft.graph.directoryRole":
			if o.ID == "" {
				return nil, "", fmt.Errorf("%w: a %s without an id", restclient.ErrMalformed, o.Type)
			}
			ids = append(ids, o.ID)
		}
	}
	return ids, page.NextLink, nil
}
