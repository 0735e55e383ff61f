package itgluetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Password returns a copy of the stored entry id, its value included, so a
// test can check what a client wrote.
func (s *Server) Password(id int) (Password, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if p == nil {
		return Password{}, false
	}
	return *p, true
}

// DeletePassword removes an entry, as a technician deleting it in IT Glue
// would; later shows and updates of it answer 404. It reports whether the
// entry existed.
func (s *Server) DeletePassword(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.passwords[id]
	if ok {
		s.unindexLocked(p)
	}
	delete(s.passwords, id)
	return ok
}

// updatePassword serves PATCH /passwords/{id} and PATCH
// /organizations/{org}/relationships/passwords/{id}: a JSON:API document
// {"data":{"type":"passwords","attributes":{…}}} whose attributes replace
// the entry's; attributes not sent stay as they are. Writing needs Password
// Access (403 without). The content type was checked by the caller (415).
func (s *Server) updatePassword(w http.ResponseWriter, r *http.Request, parts []string) {
	if s.opts.NoPasswordAccess {
		writeError(w, http.StatusForbidden, "Forbidden", "This API key does not have password access")
		return
	}
	id, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "Not Found", "Record not found")
		return
	}
	org := 0
	if len(parts) == 5 && parts[0] == "organizations" {
		if org = s.orgFromPath(w, parts[1]); org == 0 {
			return
		}
	}
	var doc struct {
		Data *struct {
			ID         json.RawMessage `json:"id"`
			Type       string          `json:"type"`
			Attributes map[string]any  `json:"attributes"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &doc); err != nil || doc.Data == nil {
		writeError(w, http.StatusBadRequest, "Bad Request", "body must be a JSON:API document with a data resource object")
		return
	}
	if doc.Data.Type != "passwords" {
		writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", fmt.Sprintf("type must be passwords, not %q", doc.Data.Type))
		return
	}
	if len(doc.Data.ID) > 0 && string(doc.Data.ID) != "null" {
		if got := strings.Trim(string(doc.Data.ID), `"`); got != strconv.Itoa(id) {
			writeError(w, http.StatusConflict, "Conflict", fmt.Sprintf("data id %s does not match the URL's %d", got, id))
			return
		}
	}
	a := doc.Data.Attributes
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if p == nil || (org != 0 && p.OrganizationID != org) {
		writeError(w, http.StatusNotFound, "Not Found", "Record not found")
		return
	}
	next := *p
	for k, v := range a {
		text, isText := v.(string)
		switch strings.ReplaceAll(k, "_", "-") {
		case "password":
			if !isText || text == "" {
				writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "password can't be blank")
				return
			}
			next.Value = text
		case "notes":
			next.Notes = text
		case "name":
			if !isText || strings.TrimSpace(text) == "" {
				writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "name can't be blank")
				return
			}
			next.Name = text
		case "username":
			next.Username = text
		case "url":
			next.URL = text
		case "organization-id":
			if n, ok := intOf(v); !ok || n != p.OrganizationID {
				writeError(w, http.StatusUnprocessableEntity, "Unprocessable Entity", "organization-id cannot be changed")
				return
			}
		}
	}
	*p = next
	writeJSON(w, http.StatusOK, map[string]any{"data": s.resourceLocked(next, false)})
}
