package autotasktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// queryableFields are the Contact fields a filter may name (lower case).
var queryableFields = map[string]bool{
	"id": true, "companyid": true, "firstname": true, "lastname": true, "emailaddress": true,
	"emailaddress2": true, "emailaddress3": true, "isactive": true, "title": true, "phone": true, "mobilephone": true,
}

// Cond is one element of Autotask's JSON filter: a comparison on a field or
// an "and"/"or" group of items.
type Cond struct {
	Op    string `json:"op"`
	Field string `json:"field,omitempty"`
	Value any    `json:"value,omitempty"`
	UDF   bool   `json:"udf,omitempty"`
	Items []Cond `json:"items,omitempty"`
}

type queryBody struct {
	MaxRecords    *int     `json:"MaxRecords"`
	IncludeFields []string `json:"IncludeFields"`
	Filter        []Cond   `json:"filter"`
}

// compile turns a filter into a predicate, checking operators and fields.
func compile(conds []Cond, group string, depth int) (func(*Contact) bool, error) {
	if depth > 20 {
		return nil, fmt.Errorf("filter nested too deeply")
	}
	preds := make([]func(*Contact) bool, 0, len(conds))
	for _, c := range conds {
		p, err := compileOne(c, depth)
		if err != nil {
			return nil, err
		}
		preds = append(preds, p)
	}
	return func(ct *Contact) bool {
		for _, p := range preds {
			if p(ct) == (group == "or") {
				return group == "or"
			}
		}
		return group != "or"
	}, nil
}

func compileOne(c Cond, depth int) (func(*Contact) bool, error) {
	op := strings.ToLower(c.Op)
	if op == "and" || op == "or" {
		if len(c.Items) == 0 {
			return nil, fmt.Errorf("a %s group needs items", op)
		}
		return compile(c.Items, op, depth+1)
	}
	if c.UDF {
		return nil, fmt.Errorf("no user-defined field named %s", c.Field)
	}
	field := strings.ToLower(c.Field)
	if !queryableFields[field] {
		return nil, fmt.Errorf("unable to find field %s in the Contact entity", c.Field)
	}
	get := func(ct *Contact) any {
		switch field {
		case "id":
			return float64(ct.ID)
		case "companyid":
			return float64(ct.CompanyID)
		case "firstname":
			return ct.FirstName
		case "lastname":
			return ct.LastName
		case "emailaddress":
			return ct.EmailAddress
		case "isactive":
			if ct.IsActive {
				return float64(1)
			}
			return float64(0)
		}
		return ""
	}
	norm := func(v any) any {
		switch x := v.(type) {
		case json.Number:
			f, _ := x.Float64()
			return f
		case bool:
			if x {
				return float64(1)
			}
			return float64(0)
		case string:
			if field == "id" || field == "companyid" || field == "isactive" {
				if f, err := strconv.ParseFloat(x, 64); err == nil {
					return f
				}
			}
			return strings.ToLower(x)
		}
		return v
	}
	want := norm(c.Value)
	cmp := func(got any) int {
		switch g := got.(type) {
		case float64:
			w, ok := want.(float64)
			if !ok {
				return 2
			}
			switch {
			case g < w:
				return -1
			case g > w:
				return 1
			}
			return 0
		case string:
			w, ok := want.(string)
			if !ok {
				return 2
			}
			return strings.Compare(strings.ToLower(g), w)
		}
		return 2
	}
	str := func(ct *Contact) string { return strings.ToLower(fmt.Sprint(get(ct))) }
	ws := strings.ToLower(fmt.Sprint(c.Value))
	switch op {
	case "eq":
		return func(ct *Contact) bool { return cmp(get(ct)) == 0 }, nil
	case "noteq":
		return func(ct *Contact) bool { return cmp(get(ct)) != 0 }, nil
	case "gt":
		return func(ct *Contact) bool { return cmp(get(ct)) == 1 }, nil
	case "gte":
		return func(ct *Contact) bool { c := cmp(get(ct)); return c == 1 || c == 0 }, nil
	case "lt":
		return func(ct *Contact) bool { return cmp(get(ct)) == -1 }, nil
	case "lte":
		return func(ct *Contact) bool { c := cmp(get(ct)); return c == -1 || c == 0 }, nil
	case "beginswith":
		return func(ct *Contact) bool { return strings.HasPrefix(str(ct), ws) }, nil
	case "endswith":
		return func(ct *Contact) bool { return strings.HasSuffix(str(ct), ws) }, nil
	case "contains":
		return func(ct *Contact) bool { return strings.Contains(str(ct), ws) }, nil
	case "exist":
		return func(ct *Contact) bool { return str(ct) != "" }, nil
	case "notexist":
		return func(ct *Contact) bool { return str(ct) == "" }, nil
	case "in", "notin":
		list, ok := c.Value.([]any)
		if !ok {
			return nil, fmt.Errorf("operator %s needs an array value", c.Op)
		}
		vals := make([]any, len(list))
		for i, v := range list {
			vals[i] = norm(v)
		}
		neg := op == "notin"
		return func(ct *Contact) bool {
			g := get(ct)
			if s, ok := g.(string); ok {
				g = strings.ToLower(s)
			}
			for _, v := range vals {
				if v == g {
					return !neg
				}
			}
			return neg
		}, nil
	}
	return nil, fmt.Errorf("unknown operator %q", c.Op)
}

func decodeStrict(r io.Reader, v any) error {
	d := json.NewDecoder(r)
	d.UseNumber()
	return d.Decode(v)
}

func (s *Server) query(w http.ResponseWriter, r *http.Request, count bool) {
	var body queryBody
	var raw []byte
	switch r.Method {
	case http.MethodPost:
		raw, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	case http.MethodGet:
		raw = []byte(r.URL.Query().Get("search"))
	default:
		writeErrors(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if err := decodeStrict(bytes.NewReader(raw), &body); err != nil {
		writeErrors(w, http.StatusInternalServerError, "Error reading the query: "+err.Error())
		return
	}
	max := MaxRecords
	if body.MaxRecords != nil {
		max = *body.MaxRecords
		if max < 1 || max > MaxRecords {
			writeErrors(w, http.StatusBadRequest, fmt.Sprintf("MaxRecords must be between 1 and %d.", MaxRecords))
			return
		}
	}
	if len(body.Filter) == 0 {
		writeErrors(w, http.StatusInternalServerError, "A query must have at least one filter.")
		return
	}
	match, err := compile(body.Filter, "and", 0)
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, err.Error())
		return
	}
	var include map[string]bool
	for _, f := range body.IncludeFields {
		if include == nil {
			include = map[string]bool{}
		}
		include[strings.ToLower(f)] = true
	}
	if count {
		s.mu.Lock()
		n := 0
		for _, c := range s.contacts {
			if match(c) {
				n++
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"queryCount": n})
		return
	}
	s.page(w, &pageState{match: match, max: max}, include)
}

func (s *Server) page(w http.ResponseWriter, st *pageState, include map[string]bool) {
	s.mu.Lock()
	var all []*Contact
	for _, c := range s.contacts {
		if c.ID > st.after && st.match(c) {
			all = append(all, c)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	if len(all) > st.max && include != nil && !include["id"] {
		s.mu.Unlock()
		writeErrors(w, http.StatusInternalServerError, "IncludeFields must contain id when more than one page is returned.")
		return
	}
	page := all[:min(len(all), st.max)]
	items := make([]map[string]any, len(page))
	for i, c := range page {
		items[i] = contactJSON(c, include)
	}
	var next any
	if len(all) > st.max {
		tok := newToken()
		s.pages[tok] = &pageState{match: st.match, after: page[len(page)-1].ID, max: st.max}
		next = s.URL + "/ATServicesRest/V1.0/Contacts/query/next?paging=" + tok
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "pageDetails": map[string]any{"count": len(items), "requestCount": st.max, "prevPageUrl": nil, "nextPageUrl": next}})
}

// nextPage serves a nextPageUrl, by GET or by POST with an empty body.
func (s *Server) nextPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeErrors(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	tok := r.URL.Query().Get("paging")
	s.mu.Lock()
	st := s.pages[tok]
	s.mu.Unlock()
	if st == nil {
		writeErrors(w, http.StatusInternalServerError, "The paging token is invalid or has expired.")
		return
	}
	s.page(w, st, nil)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, rest string) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeErrors(w, http.StatusUnsupportedMediaType, "The request entity's media type is not supported for this resource.")
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var in map[string]any
	if err := decodeStrict(bytes.NewReader(raw), &in); err != nil {
		writeErrors(w, http.StatusInternalServerError, "Error converting value: "+err.Error())
		return
	}
	num := func(k string) (int64, bool, error) {
		v, ok := in[k]
		if !ok || v == nil {
			return 0, false, nil
		}
		n, isNum := v.(json.Number)
		if !isNum {
			return 0, true, fmt.Errorf("Error converting value %v to type 'System.Int32'. Path '%s'.", v, k)
		}
		i, err := n.Int64()
		if err != nil {
			return 0, true, fmt.Errorf("Input string '%s' is not a valid integer. Path '%s'.", n, k)
		}
		return i, true, nil
	}
	str := func(k string) string {
		v, _ := in[k].(string)
		return strings.TrimSpace(v)
	}
	companyID, hasCompany, err := num("companyID")
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, err.Error())
		return
	}
	if strings.HasPrefix(rest, "companies/") {
		var parent int64
		if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimPrefix(rest, "companies/"), "/contacts"), &parent); err != nil {
			writeErrors(w, http.StatusBadRequest, "The request is invalid.")
			return
		}
		if hasCompany && companyID != parent {
			writeErrors(w, http.StatusInternalServerError, "companyID in the body does not match the parent company.")
			return
		}
		companyID, hasCompany = parent, true
	}
	active, hasActive, err := num("isActive")
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, err.Error())
		return
	}
	if _, hasID := in["id"]; hasID {
		if id, _, _ := num("id"); id != 0 {
			writeErrors(w, http.StatusInternalServerError, "id must not be set when creating a Contact.")
			return
		}
	}
	var errs []string
	if !hasCompany || companyID == 0 {
		errs = append(errs, "Contact companyID is required.")
	}
	first, last, email := str("firstName"), str("lastName"), str("emailAddress")
	if first == "" {
		errs = append(errs, "Contact firstName is required.")
	}
	if last == "" {
		errs = append(errs, "Contact lastName is required.")
	}
	if len(first) > 50 || len(last) > 50 {
		errs = append(errs, "Contact firstName and lastName are limited to 50 characters.")
	}
	if email != "" && (!strings.Contains(email, "@") || strings.ContainsAny(email, " ,;")) {
		errs = append(errs, "Contact emailAddress is not a valid email address.")
	}
	if !hasActive {
		errs = append(errs, "Contact isActive is required.")
	} else if active != 0 && active != 1 {
		errs = append(errs, "Contact isActive must be 0 or 1.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.companies[companyID]; hasCompany && companyID != 0 && !ok {
		errs = append(errs, fmt.Sprintf("Company with id %d does not exist.", companyID))
	}
	if len(errs) > 0 {
		writeErrors(w, http.StatusInternalServerError, errs...)
		return
	}
	id := s.addLocked(Contact{CompanyID: companyID, FirstName: first, LastName: last, EmailAddress: email, IsActive: active == 1})
	writeJSON(w, http.StatusOK, map[string]any{"itemId": id})
}
