package m365

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources"
)

// userSelect is the $select of every user read: only what classification
// and matching need.
const userSelect = "id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,userType," +
	"onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,onPremisesSecurityIdentifier,assignedLicenses"

// User is a Graph user as autoimport reads it. Pointer fields distinguish
// "absent" (a partial delta object) from false.
type User struct {
	ODataType                    string    `json:"@odata.type,omitempty"`
	ID                           string    `json:"id"`
	UserPrincipalName            string    `json:"userPrincipalName"`
	DisplayName                  string    `json:"displayName"`
	GivenName                    string    `json:"givenName"`
	Surname                      string    `json:"surname"`
	Mail                         string    `json:"mail"`
	AccountEnabled               *bool     `json:"accountEnabled"`
	UserType                     string    `json:"userType"`
	OnPremisesSyncEnabled        *bool     `json:"onPremisesSyncEnabled"`
	OnPremisesImmutableID        string    `json:"onPremisesImmutableId"`
	OnPremisesSamAccountName     string    `json:"onPremisesSamAccountName"`
	OnPremisesSecurityIdentifier string    `json:"onPremisesSecurityIdentifier"`
	AssignedLicenses             []License `json:"assignedLicenses"`
	Removed                      *Removal  `json:"@removed,omitempty"`
}

// License is one assigned licence.
type License struct {
	SkuID string `json:"skuId"`
}

// Removal marks a user removed since the last delta round: reason "changed"
// (soft-deleted, restorable for 30 days) or "deleted" (gone).
type Removal struct {
	Reason string `json:"reason"`
}

// rawPage is one page of a Graph collection, elements undecoded.
type rawPage struct {
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
	Value     []json.RawMessage `json:"value"`
}

// typedPage decodes a page in one pass; pages with one bad element fall
// back to decoding element by element.
type typedPage struct {
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
	Value     []User `json:"value"`
}

// DecodePage decodes one page of users. A body that is not a Graph
// collection is an error; an element that is not a user object yields an
// *sources.EntryError in its place (at the same index of errs) and the rest
// of the page is kept.
func DecodePage(body []byte) (users []User, errs []error, next, delta string, err error) {
	var tp typedPage
	if err := json.Unmarshal(body, &tp); err == nil {
		if tp.Value == nil { // absent or null; an empty page is []
			return nil, nil, "", "", fmt.Errorf("%w: no \"value\" array", restclient.ErrMalformed)
		}
		errs = make([]error, len(tp.Value))
		for i := range tp.Value {
			errs[i] = checkUser(&tp.Value[i])
		}
		return tp.Value, errs, tp.NextLink, tp.DeltaLink, nil
	}
	var p rawPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, nil, "", "", fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if p.Value == nil {
		return nil, nil, "", "", fmt.Errorf("%w: no \"value\" array", restclient.ErrMalformed)
	}
	users = make([]User, len(p.Value))
	errs = make([]error, len(p.Value))
	for i, raw := range p.Value {
		if err := json.Unmarshal(raw, &users[i]); err != nil {
			var probe struct {
				ID any `json:"id"`
			}
			_ = json.Unmarshal(raw, &probe)
			id, _ := probe.ID.(string)
			errs[i] = &sources.EntryError{Source: sources.KindM365, Entry: id, Reason: "not a Graph user object: " + err.Error()}
			continue
		}
		errs[i] = checkUser(&users[i])
	}
	return users, errs, p.NextLink, p.DeltaLink, nil
}

// checkUser reports an object without id. (A user without
// userPrincipalName may be a partial delta object; readers check that.)
func checkUser(u *User) error {
	if u.ID == "" {
		return &sources.EntryError{Source: sources.KindM365, Entry: u.UserPrincipalName, Reason: "no id"}
	}
	return nil
}

// newRequestID returns a random version-4 UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// get sends one authenticated GET to Graph and returns the body. A buf
// given is reused for the body (decoding copies what it keeps).
func (s *Source) get(ctx context.Context, rawURL string, hdr http.Header, buf *bytes.Buffer) ([]byte, error) {
	var (
		resp *http.Response
		req  restclient.Request
	)
	for attempt := 0; ; attempt++ {
		ts := s.tokenSource()
		tok, err := ts.Token()
		if err != nil {
			return nil, s.tokenError(err)
		}
		h := http.Header{}
		for k, v := range hdr {
			h[k] = v
		}
		h.Set("Authorization", "Bearer "+tok.AccessToken)
		h.Set("Accept", "application/json")
		// Our own id, echoed by Graph, correlates a request with
		// Microsoft's logs when a customer opens a support case.
		h.Set("client-request-id", newRequestID())
		// The customer is named once, by graphError.
		req = restclient.Request{Method: http.MethodGet, URL: rawURL, Header: h}
		resp, err = s.rest.Do(ctx, req)
		var re *restclient.Error
		if attempt == 0 && errors.As(err, &re) && re.Status == http.StatusUnauthorized {
			// A token revoked or expired before its announced lifetime:
			// fetch a new one, once.
			s.renewTokens(ts)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	// At most Config.MaxBody bytes: a longer page is malformed.
	return s.rest.ReadBody(resp, req, buf)
}

// getJSON GETs rawURL and decodes it into out.
func (s *Source) getJSON(ctx context.Context, op, rawURL string, hdr http.Header, out any) error {
	body, err := s.get(ctx, rawURL, hdr, nil)
	if err != nil {
		return s.graphError(op, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return s.graphError(op, fmt.Errorf("%w: %v", restclient.ErrMalformed, err))
	}
	return nil
}

// graphURL builds an absolute URL under /v1.0.
func (s *Source) graphURL(path string, q url.Values) string {
	u := s.cfg.GraphURL + "/v1.0" + path
	if len(q) > 0 {
		// Graph's system query options keep their literal "$".
		u += "?" + strings.ReplaceAll(q.Encode(), "%24", "$")
	}
	return u
}

// pageResult carries the delta link of a finished paged read.
type pageResult struct {
	deltaLink string
	pages     int
}

// userPages streams the users of a paged collection, following
// @odata.nextLink as-is until there is none. op names the read in errors
// ("list users"). A server that repeats a page or never stops is an error.
// When the read ends, res holds the delta link if the last page had one.
func (s *Source) userPages(ctx context.Context, op, first string, hdr http.Header, res *pageResult) iter.Seq2[User, error] {
	return func(yield func(User, error) bool) {
		next := first
		seen := map[string]bool{}
		var prevFirst string
		var buf bytes.Buffer
		for n := 1; next != ""; n++ {
			if n > s.cfg.MaxPages {
				yield(User{}, s.graphError(op, fmt.Errorf("more than %d pages: giving up", s.cfg.MaxPages)))
				return
			}
			pop := op + " page " + strconv.Itoa(n)
			if seen[next] {
				yield(User{}, s.graphError(pop, errors.New("the server repeated a page link")))
				return
			}
			seen[next] = true
			if err := s.checkLink(next); err != nil {
				yield(User{}, s.graphError(pop, err))
				return
			}
			body, err := s.get(ctx, next, hdr, &buf)
			if err != nil {
				yield(User{}, s.graphError(pop, err))
				return
			}
			users, errs, nl, dl, err := DecodePage(body)
			if err != nil {
				yield(User{}, s.graphError(pop, err))
				return
			}
			if len(users) > 0 && users[0].ID != "" {
				if users[0].ID == prevFirst && nl != "" {
					yield(User{}, s.graphError(pop, errors.New("the server returned the same page twice")))
					return
				}
				prevFirst = users[0].ID
			}
			for i := range users {
				if !yield(users[i], errs[i]) {
					return
				}
			}
			if res != nil {
				res.pages = n
				res.deltaLink = dl
			}
			next = nl
		}
	}
}
