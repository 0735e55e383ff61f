package cwtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxPageSize is ConnectWise's largest pageSize.
const MaxPageSize = 1000

var contactFields = map[string]bool{
	"id": true, "firstname": true, "lastname": true, "inactiveflag": true,
	"company/id": true, "company/identifier": true, "company/name": true,
}

var commFields = map[string]bool{
	"communicationitems/value": true, "communicationitems/communicationtype": true,
	"communicationitems/type/id": true, "communicationitems/type/name": true,
	"communicationitems/defaultflag": true,
}

type commItem struct {
	ID                int    `json:"id"`
	Type              idName `json:"type"`
	Value             string `json:"value"`
	Extension         any    `json:"extension"`
	DefaultFlag       bool   `json:"defaultFlag"`
	CommunicationType string `json:"communicationType"`
}

type idName struct {
	ID   int    `json:"id"`
	Name string `json:"name,omitempty"`
}

func (s *Server) items(c *Contact) []commItem {
	var out []commItem
	if c.Email != "" {
		out = append(out, commItem{ID: c.ID*10 + 1, Type: idName{ID: s.opts.EmailTypeID, Name: "Email"}, Value: c.Email, DefaultFlag: true, CommunicationType: "Email"})
	}
	return append(out, c.extraComms...)
}

func (s *Server) contactGetter(c *Contact) func(string) (any, bool) {
	co := s.companies[c.CompanyID]
	return func(f string) (any, bool) {
		switch f {
		case "id":
			return c.ID, true
		case "firstname":
			return c.FirstName, true
		case "lastname":
			return c.LastName, true
		case "inactiveflag":
			return c.Inactive, true
		case "company/id":
			return c.CompanyID, true
		case "company/identifier":
			if co == nil {
				return nil, true
			}
			return co.identifier, true
		case "company/name":
			if co == nil {
				return nil, true
			}
			return co.name, true
		}
		return nil, false
	}
}

func itemGetter(it commItem) func(string) (any, bool) {
	return func(f string) (any, bool) {
		switch f {
		case "communicationitems/value":
			return it.Value, true
		case "communicationitems/communicationtype":
			return it.CommunicationType, true
		case "communicationitems/type/id":
			return it.Type.ID, true
		case "communicationitems/type/name":
			return it.Type.Name, true
		case "communicationitems/defaultflag":
			return it.DefaultFlag, true
		}
		return nil, false
	}
}

func (s *Server) contactJSON(c *Contact, fields []string) map[string]any {
	co := s.companies[c.CompanyID]
	cm := map[string]any{"id": c.CompanyID}
	if co != nil {
		cm["identifier"], cm["name"] = co.identifier, co.name
	}
	m := map[string]any{
		"id": c.ID, "firstName": c.FirstName, "lastName": c.LastName, "company": cm,
		"site": map[string]any{"id": 10, "name": "Main"}, "inactiveFlag": c.Inactive,
		"communicationItems": s.items(c),
		"_info":              map[string]any{"lastUpdated": c.LastUpdated.Format(time.RFC3339)},
	}
	if len(fields) == 0 {
		return m
	}
	out := map[string]any{}
	for _, f := range fields {
		top, _, _ := strings.Cut(strings.TrimSpace(f), "/")
		if v, ok := m[top]; ok {
			out[top] = v
		}
	}
	return out
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size := 25
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "InvalidObject", "pageSize must be a positive integer", nil)
			return
		}
		if n > MaxPageSize {
			if !s.opts.ClampPageSize {
				writeError(w, http.StatusBadRequest, "InvalidObject", fmt.Sprintf("pageSize cannot be greater than %d", MaxPageSize), nil)
				return
			}
			n = MaxPageSize
		}
		size = n
	}
	forward := strings.EqualFold(r.Header.Get("pagination-type"), "forward-only")
	if forward && q.Get("orderBy") != "" {
		writeError(w, http.StatusBadRequest, "InvalidObject", "orderBy cannot be used with forward-only pagination", nil)
		return
	}
	cond, err := parseConditions(q.Get("conditions"), contactFields)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidObject", "conditions: "+err.Error(), nil)
		return
	}
	child, err := parseConditions(firstOf(q, "childConditions", "childconditions"), commFields)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidObject", "childConditions: "+err.Error(), nil)
		return
	}
	hasChild := firstOf(q, "childConditions", "childconditions") != ""
	var fields []string
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	s.mu.Lock()
	matches := func(c *Contact) bool {
		if !cond(s.contactGetter(c)) {
			return false
		}
		if !hasChild {
			return true
		}
		for _, it := range s.items(c) {
			if child(itemGetter(it)) {
				return true
			}
		}
		return false
	}
	var page []*Contact
	link := func(params map[string]string, rel string) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		for k, p := range params {
			v.Set(k, p)
		}
		return fmt.Sprintf("<%s%s?%s>; rel=%q", s.URL, r.URL.Path, v.Encode(), rel)
	}
	var links []string
	if forward {
		after := 0
		if v := q.Get("pageId"); v != "" {
			if after, err = strconv.Atoi(v); err != nil {
				s.mu.Unlock()
				writeError(w, http.StatusBadRequest, "InvalidObject", "pageId must be an integer", nil)
				return
			}
		}
		// The page's contacts, and one more if there is a next page.
		i, found := slices.BinarySearch(s.ids, after)
		if found {
			i++ // the page starts after it
		}
		for ; i < len(s.ids) && len(page) <= size; i++ {
			if c := s.contacts[s.ids[i]]; matches(c) {
				page = append(page, c)
			}
		}
		if len(page) > size {
			page = page[:size]
			links = append(links, link(map[string]string{"pageId": strconv.Itoa(page[len(page)-1].ID)}, "next"))
		}
	} else {
		n := 1
		if v := q.Get("page"); v != "" {
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				s.mu.Unlock()
				writeError(w, http.StatusBadRequest, "InvalidObject", "page must be a positive integer", nil)
				return
			}
		}
		var all []*Contact
		for _, id := range s.ids {
			if c := s.contacts[id]; matches(c) {
				all = append(all, c)
			}
		}
		last := max(1, (len(all)+size-1)/size)
		lo := min(len(all), (n-1)*size)
		page = all[lo:min(len(all), lo+size)]
		if n > 1 {
			links = append(links, link(map[string]string{"page": "1"}, "first"), link(map[string]string{"page": strconv.Itoa(n - 1)}, "prev"))
		}
		if n < last {
			links = append(links, link(map[string]string{"page": strconv.Itoa(n + 1)}, "next"), link(map[string]string{"page": strconv.Itoa(last)}, "last"))
		}
	}
	out := make([]map[string]any, len(page))
	for i, c := range page {
		out[i] = s.contactJSON(c, fields)
	}
	s.mu.Unlock()
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, out)
}

func firstOf(q url.Values, keys ...string) string {
	for _, k := range keys {
		if v := q.Get(k); v != "" {
			return v
		}
	}
	return ""
}

type newContact struct {
	ID           *int    `json:"id"`
	FirstName    *string `json:"firstName"`
	LastName     *string `json:"lastName"`
	InactiveFlag bool    `json:"inactiveFlag"`
	Company      *struct {
		ID         int    `json:"id"`
		Identifier string `json:"identifier"`
	} `json:"company"`
	CommunicationItems []struct {
		Type *struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"type"`
		Value       string `json:"value"`
		DefaultFlag bool   `json:"defaultFlag"`
	} `json:"communicationItems"`
}

func invalid(w http.ResponseWriter, errs ...fieldError) {
	writeError(w, http.StatusBadRequest, "InvalidObject", "contact object is invalid", errs)
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Content-Type must be application/json", nil)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidObject", "could not read body", nil)
		return
	}
	var in newContact
	if err := json.Unmarshal(raw, &in); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidObject", "The request body is not valid JSON: "+err.Error(), nil)
		return
	}
	var errs []fieldError
	fe := func(code, field, msg string) {
		errs = append(errs, fieldError{Code: code, Message: msg, Resource: "contact", Field: field})
	}
	if in.ID != nil && *in.ID != 0 {
		fe("InvalidField", "id", "id cannot be set on create.")
	}
	first, last := "", ""
	if in.FirstName != nil {
		first = strings.TrimSpace(*in.FirstName)
	}
	if in.LastName != nil {
		last = strings.TrimSpace(*in.LastName)
	}
	switch {
	case first == "":
		fe("NullValue", "firstName", "firstName may not be empty.")
	case len([]rune(first)) > 30:
		fe("OutOfRange", "firstName", "firstName cannot be greater than 30 characters.")
	}
	if len([]rune(last)) > 60 {
		fe("OutOfRange", "lastName", "lastName cannot be greater than 60 characters.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	companyID := 0
	switch {
	case in.Company == nil || (in.Company.ID == 0 && in.Company.Identifier == ""):
		fe("NullValue", "company", "company may not be empty.")
	case in.Company.ID != 0:
		if s.companies[in.Company.ID] == nil {
			fe("InvalidObject", "company", fmt.Sprintf("Company with id %d not found.", in.Company.ID))
		}
		companyID = in.Company.ID
	default:
		for _, c := range s.companies {
			if strings.EqualFold(c.identifier, in.Company.Identifier) {
				companyID = c.id
			}
		}
		if companyID == 0 {
			fe("InvalidObject", "company", fmt.Sprintf("Company %q not found.", in.Company.Identifier))
		}
	}
	c := Contact{CompanyID: companyID, FirstName: first, LastName: last, Inactive: in.InactiveFlag, LastUpdated: time.Now().UTC().Truncate(time.Second)}
	for i, it := range in.CommunicationItems {
		field := fmt.Sprintf("communicationItems[%d]", i)
		if it.Type == nil {
			fe("NullValue", field+".type", "type may not be empty.")
			continue
		}
		var t *commType
		for j := range s.commTypes {
			ct := &s.commTypes[j]
			if (it.Type.ID != 0 && ct.ID == it.Type.ID) || (it.Type.ID == 0 && strings.EqualFold(ct.Name, it.Type.Name)) {
				t = ct
			}
		}
		if t == nil {
			fe("InvalidObject", field+".type", "Communication type not found.")
			continue
		}
		if t.EmailFlag {
			if !strings.Contains(it.Value, "@") || strings.ContainsAny(it.Value, " \t") {
				fe("InvalidObject", field+".value", "Email address is not valid.")
				continue
			}
			if c.Email == "" {
				c.Email = it.Value
				continue
			}
		}
		ctype := "Phone"
		if t.EmailFlag {
			ctype = "Email"
		}
		c.extraComms = append(c.extraComms, commItem{ID: 900000 + len(s.contacts)*10 + i, Type: idName{ID: t.ID, Name: t.Name}, Value: it.Value, DefaultFlag: it.DefaultFlag, CommunicationType: ctype})
	}
	if len(errs) > 0 {
		invalid(w, errs...)
		return
	}
	c.ID = s.addLocked(c)
	writeJSON(w, http.StatusCreated, s.contactJSON(s.contacts[c.ID], nil))
}
