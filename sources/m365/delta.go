package m365

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
)

// DeltaResult describes a delta round once its stream has been consumed.
//
// Persist DeltaLink only when Complete is true: a round stopped early (an
// error, or the caller breaking out of the loop) leaves Complete false and
// DeltaLink empty, and the previous link must be used again.
type DeltaResult struct {
	// Complete is true when every page was read and every account yielded.
	Complete bool
	// DeltaLink is the link for the next round; set only when Complete.
	DeltaLink string
	// FullRead is true when the round read every user of the tenant: no
	// link was given, or the given link had expired (Expired).
	FullRead bool
	// Expired is true when Graph refused the given link (older than seven
	// days, syncStateNotFound, resyncRequired, 410 Gone) and the round fell
	// back to a full read.
	Expired bool
	// Changed counts users yielded as added or changed; Removed counts users
	// yielded as removed (SkipDeleted or SkipSoftDeleted).
	Changed, Removed int
	// Pages counts the pages read.
	Pages int
	// EntryErrors counts broken entries yielded as *sources.EntryError.
	// They do not make the round incomplete: a broken entry comes again
	// in the round after its next change, not before.
	EntryErrors int
}

// DeltaMarker is the Account.Changed value of accounts read by Delta.
const DeltaMarker = "delta"

// Delta streams the users changed since deltaLink (every user when
// deltaLink is empty), classified as Accounts does for sel: members of
// sel.Groups and holders of selected roles are candidates, other changed
// users come with SkipNotSelected (an empty selection selects everyone).
// Removed users come as accounts with only ID and SkipDeleted or
// SkipSoftDeleted set. A partial object (no userPrincipalName) is re-read in
// full.
//
// The returned *DeltaResult is filled in as the stream is consumed; read it
// after the loop. When Graph refuses deltaLink as expired, the round starts
// over with a full read and says so in the result.
func (s *Source) Delta(ctx context.Context, sel sources.Selection, deltaLink string) (iter.Seq2[sources.Account, error], *DeltaResult) {
	res := &DeltaResult{}
	seq := func(yield func(sources.Account, error) bool) {
		*res = DeltaResult{}
		roles, err := s.loadRoles(ctx, sel)
		if err != nil {
			yield(sources.Account{}, err)
			return
		}
		everyone := sel.Empty()
		var memberOf map[string][]string
		if len(sel.Groups) > 0 {
			groups, err := s.resolveGroups(ctx, sel.Groups, graphGroups{s})
			if err != nil {
				yield(sources.Account{}, err)
				return
			}
			if memberOf, err = s.memberIDs(ctx, groups); err != nil {
				yield(sources.Account{}, err)
				return
			}
		}
		hdr := http.Header{"Prefer": {"odata.maxpagesize=" + strconv.Itoa(s.cfg.PageSize)}}
		fresh := s.graphURL("/users/delta", url.Values{"$select": {userSelect}})
		link := deltaLink
		if link == "" {
			link = fresh
			res.FullRead = true
		}
		for attempt := 0; ; attempt++ {
			var pr pageResult
			yielded := 0
			restart := false
			for u, err := range s.userPages(ctx, "read user changes", link, hdr, &pr) {
				if err != nil {
					if yielded == 0 && attempt == 0 && link != fresh && deltaExpired(err) {
						s.cfg.Log.WithField("customer", s.cfg.Customer).Info("Microsoft 365: delta link expired; reading every user")
						restart = true
						break
					}
					if !yield(sources.Account{}, err) || !isEntryError(err) {
						return
					}
					res.EntryErrors++
					continue
				}
				yielded++
				var a sources.Account
				if u.Removed != nil {
					a = sources.Account{Source: sources.KindM365, ID: u.ID, Changed: DeltaMarker, SkipReason: SkipDeleted}
					if u.Removed.Reason == "changed" {
						a.SkipReason = SkipSoftDeleted
					}
					res.Removed++
				} else {
					if u.UserPrincipalName == "" {
						full, gone, err := s.readUser(ctx, u.ID)
						switch {
						case err != nil:
							if !yield(sources.Account{}, err) || !isEntryError(err) {
								return
							}
							res.EntryErrors++
							continue
						case gone:
							res.Removed++
							if !yield(sources.Account{Source: sources.KindM365, ID: u.ID, Changed: DeltaMarker, SkipReason: SkipDeleted}, nil) {
								return
							}
							continue
						}
						u = full
						if err := needUPN(u.ID, u.UserPrincipalName); err != nil {
							res.EntryErrors++
							if !yield(sources.Account{}, err) {
								return
							}
							continue
						}
					}
					var by []string
					switch {
					case everyone:
						by = []string{ReasonAllUsers}
					default:
						by = append(by, memberOf[u.ID]...)
						by = append(by, roles.selectedHeld(u.ID)...)
					}
					a = s.classify(u.facts(), sel, roles.held[u.ID], by, DeltaMarker)
					res.Changed++
				}
				if !yield(a, nil) {
					return
				}
			}
			res.Pages += pr.pages
			if !restart {
				if pr.deltaLink == "" {
					yield(sources.Account{}, s.graphError("read user changes", errors.New("the last page carried no @odata.deltaLink")))
					return
				}
				res.DeltaLink = pr.deltaLink
				res.Complete = true
				return
			}
			res.Expired = true
			res.FullRead = true
			link = fresh
		}
	}
	return seq, res
}

// deltaExpired reports whether Graph refused a delta link as too old.
func deltaExpired(err error) bool {
	_, expired := expiryReason(err)
	return expired
}

// readUser reads one user in full; gone is true when it no longer exists.
func (s *Source) readUser(ctx context.Context, id string) (u User, gone bool, err error) {
	op := "read user " + id
	body, err := s.get(ctx, s.graphURL("/users/"+url.PathEscape(id), url.Values{"$select": {userSelect}}), nil, nil)
	if err != nil {
		var re *restclient.Error
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return User{}, true, nil
		}
		return User{}, false, s.graphError(op, err)
	}
	users, errs, _, _, err := DecodePage(append(append([]byte(`{"value":[`), body...), ']', '}'))
	if err != nil {
		return User{}, false, s.graphError(op, err)
	}
	if len(users) != 1 {
		return User{}, false, s.graphError(op, restclient.ErrMalformed)
	}
	if errs[0] != nil {
		return User{}, false, errs[0]
	}
	return users[0], false, nil
}
