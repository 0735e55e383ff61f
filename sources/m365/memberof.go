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
	"strings"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
	"golang.org/x/sync/errgroup"
)

// readNewMemberships reads the memberships of the users and groups an
// incremental round brought that the copy does not hold: new hires and
// groups, and users and groups restored from the deleted items.
// Microsoft documents that deleting one shows its memberships as removed
// in groups/delta and directoryRoles/delta, not whether restoring it sends
// them again; the copy dropped them with the object, so it asks Graph
// instead of trusting the rounds' silence: a user's memberOf (its groups
// and roles), a group's memberOf and members. What a round said of a
// membership wins (it may be newer than what Graph answers from a
// replica); these lookups only add the memberships the round said nothing
// about. One request per new user and two per new group (more past 999),
// lookupsAtOnce objects at a time.
//
// Graph answers 404 for an object deleted since the round, and also for
// one its answering replica does not hold yet (Entra is eventually
// consistent: a new or restored object can be "not found" for a while).
// One answer cannot tell which, so a 404 costs a retry, not the
// memberships: the object is kept in the position's Lookups and asked
// again next round, unless that round says it is gone; more than
// maxLookupsAgain of them make the next read full.
func (r *deltaReader) readNewMemberships(ctx context.Context, copies sources.CopyStore, customer string, cs *changeSet) error {
	var ids []string
	for id, c := range cs.users {
		if !c.removed {
			ids = append(ids, id)
		}
	}
	for id, c := range cs.groups {
		if !c.removed {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	held := map[string]bool{}
	if len(ids) > 0 {
		var err error
		if held, err = copies.CopyHolds(ctx, customer, copySource, ids); err != nil {
			return fmt.Errorf("Microsoft 365: customer %s: read the local copy: %w", customer, err)
		}
	}
	type lookup struct {
		id, kind         string // "users" or "groups"
		parents, members []string
		found            bool
		requests         int
	}
	var fresh []*lookup
	asked := map[string]bool{}
	ask := func(kind, id string) {
		if !asked[kind+"/"+id] {
			asked[kind+"/"+id] = true
			fresh = append(fresh, &lookup{id: id, kind: kind})
		}
	}
	for _, id := range ids {
		if !held[id] {
			kind := "users"
			if cs.groups[id] != nil {
				kind = "groups"
			}
			ask(kind, id)
		}
	}
	for _, again := range cs.lookups {
		kind, id, _ := strings.Cut(again, "/")
		if gone := kind == "users" && cs.users[id] != nil && cs.users[id].removed ||
			kind == "groups" && cs.groups[id] != nil && cs.groups[id].removed; !gone && id != "" {
			ask(kind, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// A few objects' lookups at once, each its own round trips; their
	// answers are merged in the objects' order once all are in.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lookupsAtOnce)
	for _, l := range fresh {
		g.Go(func() error {
			var n int
			var err error
			l.parents, l.found, n, err = r.s.directoryObjects(gctx, "/"+l.kind+"/"+url.PathEscape(l.id)+"/memberOf", parentTypes)
			l.requests += n
			if err != nil || !l.found || l.kind != "groups" {
				return err
			}
			l.members, l.found, n, err = r.s.directoryObjects(gctx, "/groups/"+url.PathEscape(l.id)+"/members", memberTypes)
			l.requests += n
			return err
		})
	}
	err := g.Wait()
	for _, l := range fresh {
		r.requests += l.requests
	}
	if err != nil {
		return err
	}
	unsaid := func(group, member string) {
		k := uint64(cs.number(group))<<32 | uint64(cs.number(member))
		if _, said := cs.links[k]; !said {
			cs.links[k] = true
		}
	}
	cs.pos.Lookups = nil
	for _, l := range fresh {
		if !l.found { // gone since the round, or not replicated yet: asked again
			cs.pos.Lookups = append(cs.pos.Lookups, l.kind+"/"+l.id)
			continue
		}
		for _, p := range l.parents {
			unsaid(p, l.id)
		}
		for _, m := range l.members {
			unsaid(l.id, m)
		}
	}
	return nil
}

// maxLookupsAgain is how many membership lookups and reads of whole users
// (position.Lookups and Unread) Graph answered 404 a position carries to
// the next round; more make the next read full.
const maxLookupsAgain = 1000

// lookupsAtOnce is how many new objects' memberships one read asks at
// once.
const lookupsAtOnce = 4

// The directory objects a membership lookup keeps: the groups and roles
// an object is a member of, the users and groups that are a group's
// members (devices, contacts and service principals are never accounts).
var (
	parentTypes = []string{"#microsoft.graph.group", "#microsoft.graph.directoryRole"}
	memberTypes = []string{"#microsoft.graph.user", "#microsoft.graph.group"}
)

// directoryObjects reads the ids of the directory objects of the types
// given in a collection under /v1.0 (path: /users/{id}/memberOf,
// /groups/{id}/members), and how many requests that took; found is false
// when Graph answers that its owner does not exist (404).
func (s *Source) directoryObjects(ctx context.Context, path string, types []string) (ids []string, found bool, requests int, err error) {
	op := "list " + path
	next := s.graphURL(path, url.Values{"$select": {"id"}, "$top": {strconv.Itoa(MaxPageSize)}})
	for next != "" {
		if requests >= s.cfg.MaxPages {
			return nil, false, requests, s.graphError(op, errors.New("too many pages"))
		}
		if err := s.checkLink(next); err != nil {
			return nil, false, requests, s.graphError(op, err)
		}
		requests++
		body, err := s.get(ctx, next, nil, nil)
		if err != nil {
			var re *restclient.Error
			if errors.As(err, &re) && re.Status == http.StatusNotFound {
				return nil, false, requests, nil
			}
			return nil, false, requests, s.graphError(op, err)
		}
		var page []string
		if page, next, err = decodeDirectoryObjects(body, types); err != nil {
			return nil, false, requests, s.graphError(op, err)
		}
		ids = append(ids, page...)
	}
	return ids, true, requests, nil
}

// decodeDirectoryObjects reads one page of a directory-object collection:
// the ids of the objects of the types given (anything else left out) and
// the next page's link. A page that is not one, or an object of those
// types without an id, is malformed.
func decodeDirectoryObjects(body []byte, types []string) (ids []string, next string, err error) {
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
		if !slices.Contains(types, o.Type) {
			continue
		}
		if o.ID == "" {
			return nil, "", fmt.Errorf("%w: a %s without an id", restclient.ErrMalformed, o.Type)
		}
		ids = append(ids, o.ID)
	}
	return ids, page.NextLink, nil
}
