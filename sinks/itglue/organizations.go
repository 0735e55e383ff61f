package itglue

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// Organization is an IT Glue organization, for mapping a customer to it.
type Organization struct {
	ID        string
	Name      string
	ShortName string
	Type      string // organization-type-name, e.g. "Customer"
	Status    string // organization-status-name, e.g. "Active"
}

// DecodeOrganizations decodes one page of an organization listing.
func DecodeOrganizations(body []byte) ([]Organization, int, error) {
	var doc struct {
		Data *[]struct {
			ID         flexID `json:"id"`
			Attributes struct {
				Name      *string `json:"name"`
				ShortName *string `json:"short-name"`
				Type      *string `json:"organization-type-name"`
				Status    *string `json:"organization-status-name"`
			} `json:"attributes"`
		} `json:"data"`
		Meta struct {
			NextPage json.RawMessage `json:"next-page"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", restclient.ErrMalformed, err)
	}
	if doc.Data == nil {
		return nil, 0, fmt.Errorf("%w: no data member", restclient.ErrMalformed)
	}
	next, err := pageNumber(doc.Meta.NextPage)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Organization, 0, len(*doc.Data))
	for _, d := range *doc.Data {
		if d.ID == "" {
			return nil, 0, fmt.Errorf("%w: organization without an id", restclient.ErrMalformed)
		}
		a := d.Attributes
		out = append(out, Organization{ID: string(d.ID), Name: str(a.Name), ShortName: str(a.ShortName), Type: str(a.Type), Status: str(a.Status)})
	}
	return out, next, nil
}

// Organizations lists the account's organizations whose name is name
// (every organization when name is empty), for mapping customers.
func (c *Client) Organizations(ctx context.Context, name string) ([]Organization, error) {
	q := url.Values{}
	if name != "" {
		q.Set("filter[name]", name)
	}
	return c.organizations(ctx, q)
}

// OrganizationsByPSA lists the organizations that sync with a PSA company:
// psaType is IT Glue's integration type ("manage", "autotask", ...) and
// psaID the company's id in that PSA.
func (c *Client) OrganizationsByPSA(ctx context.Context, psaType, psaID string) ([]Organization, error) {
	if psaType == "" || psaID == "" {
		return nil, fmt.Errorf("%s: list organizations by PSA company: both the integration type and the id are needed", Integration)
	}
	q := url.Values{}
	q.Set("filter[psa_id]", psaID)
	q.Set("filter[psa_integration_type]", psaType)
	return c.organizations(ctx, q)
}

func (c *Client) organizations(ctx context.Context, filter url.Values) ([]Organization, error) {
	var all []Organization
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: list organizations: more than %d pages, giving up", Integration, maxPages)
		}
		q := url.Values{}
		for k, v := range filter {
			q[k] = v
		}
		q.Set("page[size]", fmt.Sprint(c.cfg.PageSize))
		q.Set("page[number]", fmt.Sprint(page))
		body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: c.base + "/organizations?" + q.Encode(), Header: c.header})
		if err != nil {
			return nil, fmt.Errorf("%s: list organizations page %d: %w", Integration, page, err)
		}
		list, next, err := DecodeOrganizations(body)
		if err != nil {
			return nil, &restclient.Error{Integration: Integration, Method: http.MethodGet, Path: path, Status: status, Err: err}
		}
		fresh := 0
		for _, o := range list {
			if !seen[o.ID] {
				seen[o.ID] = true
				fresh++
				all = append(all, o)
			}
		}
		if next == 0 {
			return all, nil
		}
		if next <= page || fresh == 0 {
			return nil, fmt.Errorf("%s: list organizations page %d: %w: paging does not move forward", Integration, page, restclient.ErrMalformed)
		}
		page = next - 1
	}
}

// Check verifies the key and the URL with two small requests: one
// organization and the password categories. It needs no Password Access.
func (c *Client) Check(ctx context.Context) error {
	u := c.base + "/organizations?page[size]=1"
	if _, _, _, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: u, Header: c.header}); err != nil {
		return fmt.Errorf("%s: check: list organizations: %w", Integration, err)
	}
	if err := c.loadCategories(ctx, ""); err != nil {
		return fmt.Errorf("%s: check: list password categories: %w", Integration, err)
	}
	return nil
}
