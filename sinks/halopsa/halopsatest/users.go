package halopsatest

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

// advancedFields are the fields advanced_search accepts; others are
// refused as some instances do.
var advancedFields = map[string]bool{"emailaddress": true, "networklogin": true}

func intParam(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil
}

func userJSON(u *User, c *client) map[string]any {
	m := map[string]any{
		"id": u.ID, "name": u.Name, "firstname": u.FirstName, "surname": u.Surname,
		"emailaddress": u.EmailAddress, "client_id": u.ClientID, "site_id": u.SiteID,
		"inactive": u.Inactive, "networklogin": u.NetworkLogin, "azureoid": "", "phonenumber": "",
	}
	if c != nil {
		m["client_name"] = c.name
		for _, st := range c.sites {
			if st.id == u.SiteID {
				m["site_name"] = st.name
			}
		}
	}
	return m
}

// fuzzy reports whether every word of search occurs in the user's name,
// email address or network login, as Halo's search does.
func fuzzy(u *User, search string) bool {
	hay := strings.ToLower(u.Name + " " + u.FirstName + " " + u.Surname + " " + u.EmailAddress + " " + u.NetworkLogin)
	for _, w := range strings.Fields(strings.ToLower(search)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

type advanced struct {
	FilterName  string `json:"filter_name"`
	FilterType  int    `json:"filter_type"`
	FilterValue string `json:"filter_value"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, siteID := 0, 0
	if v := q.Get("client_id"); v != "" {
		n, ok := intParam(v)
		if !ok {
			badRequest(w, "client_id must be an integer")
			return
		}
		clientID = n
	}
	if v := q.Get("site_id"); v != "" {
		n, ok := intParam(v)
		if !ok {
			badRequest(w, "site_id must be an integer")
			return
		}
		siteID = n
	}
	var adv []advanced
	if v := q.Get("advanced_search"); v != "" {
		if err := json.Unmarshal([]byte(v), &adv); err != nil {
			badRequest(w, "Invalid advanced search parameter")
			return
		}
		for _, a := range adv {
			if !advancedFields[strings.ToLower(a.FilterName)] || a.FilterType != 2 {
				badRequest(w, "Invalid advanced search parameter")
				return
			}
		}
	}
	inactive := strings.EqualFold(q.Get("includeinactive"), "true")
	search := q.Get("search")
	paged := strings.EqualFold(q.Get("pageinate"), "true")
	size, page := 50, 1
	if paged {
		if v := q.Get("page_size"); v != "" {
			n, ok := intParam(v)
			if !ok || n < 1 {
				badRequest(w, "page_size must be a positive integer")
				return
			}
			size = n
		}
		if v := q.Get("page_no"); v != "" {
			n, ok := intParam(v)
			if !ok || n < 1 {
				badRequest(w, "page_no must be a positive integer")
				return
			}
			page = n
		}
	}
	s.mu.Lock()
	var all []*User
	for _, u := range s.users {
		if (clientID != 0 && u.ClientID != clientID) || (siteID != 0 && u.SiteID != siteID) || (u.Inactive && !inactive) {
			continue
		}
		if search != "" && !fuzzy(u, search) {
			continue
		}
		ok := true
		for _, a := range adv {
			v := u.EmailAddress
			if strings.EqualFold(a.FilterName, "networklogin") {
				v = u.NetworkLogin
			}
			ok = ok && strings.EqualFold(v, a.FilterValue)
		}
		if ok {
			all = append(all, u)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	total := len(all)
	if paged {
		lo := min(len(all), (page-1)*size)
		all = all[lo:min(len(all), lo+size)]
	}
	users := make([]map[string]any, len(all))
	for i, u := range all {
		users[i] = userJSON(u, s.clients[u.ClientID])
	}
	s.mu.Unlock()
	body := map[string]any{"record_count": total, "users": users}
	if paged {
		body["page_no"], body["page_size"] = page, size
	}
	writeJSON(w, http.StatusOK, body)
}

// integer reads an id field: a JSON integer, not a float such as 95.0
// and not a string.
func integer(rec map[string]json.RawMessage, k string) (int, bool, error) {
	raw, ok := rec[k]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
	if err != nil {
		return 0, true, fmt.Errorf("%s must be an integer, got %s", k, raw)
	}
	return n, true, nil
}

func text(rec map[string]json.RawMessage, k string) string {
	var s string
	_ = json.Unmarshal(rec[k], &s)
	return strings.TrimSpace(s)
}

func (s *Server) createUsers(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		badRequest(w, "The request body must be an array of users.")
		return
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &recs); err != nil {
		badRequest(w, "The request body is invalid: "+err.Error())
		return
	}
	if len(recs) == 0 {
		badRequest(w, "The request body is an empty array.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var saved []map[string]any
	var toAdd []User
	for i, rec := range recs {
		fail := func(msg string) { badRequest(w, fmt.Sprintf("Record %d: %s", i, msg)) }
		id, hasID, err := integer(rec, "id")
		if err != nil {
			fail(err.Error())
			return
		}
		clientID, _, err := integer(rec, "client_id")
		if err != nil {
			fail(err.Error())
			return
		}
		siteID, hasSite, err := integer(rec, "site_id")
		if err != nil {
			fail(err.Error())
			return
		}
		if hasID && id > 0 {
			u := s.users[id]
			if u == nil {
				fail(fmt.Sprintf("User %d not found", id))
				return
			}
			if v := text(rec, "emailaddress"); v != "" {
				u.EmailAddress = v
			}
			saved = append(saved, userJSON(u, s.clients[u.ClientID]))
			continue
		}
		c := s.clients[clientID]
		if c == nil {
			fail(fmt.Sprintf("Client %d not found", clientID))
			return
		}
		if !hasSite || siteID == 0 {
			if s.opts.RequireSite {
				fail("A site is required")
				return
			}
			siteID = c.sites[0].id
		}
		onClient := false
		for _, st := range c.sites {
			onClient = onClient || st.id == siteID
		}
		if !onClient {
			fail(fmt.Sprintf("Site %d does not belong to client %d", siteID, clientID))
			return
		}
		u := User{ClientID: clientID, SiteID: siteID, Name: text(rec, "name"), FirstName: text(rec, "firstname"), Surname: text(rec, "surname"), EmailAddress: text(rec, "emailaddress"), NetworkLogin: text(rec, "networklogin")}
		if u.Name == "" && u.FirstName == "" && u.Surname == "" {
			fail("A name is required")
			return
		}
		if u.EmailAddress != "" && !strings.Contains(u.EmailAddress, "@") {
			fail("The email address is not valid")
			return
		}
		toAdd = append(toAdd, u)
	}
	for _, u := range toAdd {
		id := s.addLocked(u)
		saved = append(saved, userJSON(s.users[id], s.clients[u.ClientID]))
	}
	if s.opts.EchoObject && len(saved) == 1 {
		writeJSON(w, http.StatusCreated, saved[0])
		return
	}
	writeJSON(w, http.StatusCreated, saved)
}

func (s *Server) listSites(w http.ResponseWriter, r *http.Request) {
	clientID, ok := intParam(r.URL.Query().Get("client_id"))
	if !ok {
		badRequest(w, "client_id must be an integer")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sites := []map[string]any{}
	if c := s.clients[clientID]; c != nil {
		for _, st := range c.sites {
			sites = append(sites, map[string]any{"id": st.id, "name": st.name, "client_id": c.id, "client_name": c.name})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"record_count": len(sites), "sites": sites})
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	id, ok := intParam(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/api/client/"))
	if !ok {
		badRequest(w, "id must be an integer")
		return
	}
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.id, "name": c.name})
}
