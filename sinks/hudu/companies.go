package hudu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/msp-tools/autoimport/internal/restclient"
)

// Company is a Hudu company, for mapping a customer to it.
type Company struct {
	ID   int
	Name string
	// IDInIntegration is the PSA company id the company syncs with, if any.
	IDInIntegration string
}

// DecodeCompanies decodes one page of a company listing {"companies":[…]}.
func DecodeCompanies(body []byte) ([]Company, error) {
	var doc struct {
		List *[]struct {
			ID              flexInt         `json:"id"`
			Name            *string         `json:"name"`
			IDInIntegration json.RawMessage `json:"id_in_integration"`
		} `json:"companies"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s", restclient.ErrMalformed, syntaxOnly(err))
	}
	if doc.List == nil {
		return nil, fmt.Errorf("%w: no companies member", restclient.ErrMalformed)
	}
	out := make([]Company, 0, len(*doc.List))
	for _, c := range *doc.List {
		if c.ID <= 0 {
			return nil, fmt.Errorf("%w: company without an id", restclient.ErrMalformed)
		}
		var integ string
		var n json.Number
		if json.Unmarshal(c.IDInIntegration, &integ) != nil && json.Unmarshal(c.IDInIntegration, &n) == nil {
			integ = n.String()
		}
		out = append(out, Company{ID: int(c.ID), Name: str(c.Name), IDInIntegration: integ})
	}
	return out, nil
}

// Companies lists the instance's companies whose name is name (every
// company when name is empty), for mapping customers.
func (c *Client) Companies(ctx context.Context, name string) ([]Company, error) {
	var all []Company
	seen := map[int]bool{}
	for page := 1; page <= maxPages; page++ {
		q := url.Values{}
		if name != "" {
			q.Set("name", name)
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(c.cfg.PageSize))
		body, status, path, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: c.base + "/companies?" + q.Encode(), Header: c.header})
		if err != nil {
			return nil, fmt.Errorf("%s: list companies page %d: %w", Integration, page, err)
		}
		list, err := DecodeCompanies(body)
		if err != nil {
			return nil, &restclient.Error{Integration: Integration, Method: http.MethodGet, Path: path, Status: status, Err: err}
		}
		fresh := 0
		for _, co := range list {
			if !seen[co.ID] {
				seen[co.ID] = true
				fresh++
				all = append(all, co)
			}
		}
		// An empty page ends the list; so does a repeated one (a server
		// that ignores page). Short pages are not trusted as the end,
		// since the largest page_size honoured is undocumented.
		if len(list) == 0 || fresh == 0 {
			return all, nil
		}
	}
	return nil, fmt.Errorf("%s: list companies: more than %d pages, giving up", Integration, maxPages)
}

// Check verifies the key and the URL with one small request.
func (c *Client) Check(ctx context.Context) error {
	if _, _, _, err := c.read(ctx, restclient.Request{Method: http.MethodGet, URL: c.base + "/companies?page_size=1", Header: c.header}); err != nil {
		return fmt.Errorf("%s: check: list companies: %w", Integration, err)
	}
	return nil
}
