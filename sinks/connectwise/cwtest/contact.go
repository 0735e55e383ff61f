package cwtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Contact returns a copy of the stored contact id.
func (s *Server) Contact(id int) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[id]
	if c == nil {
		return Contact{}, false
	}
	return *c, true
}

// DeleteContact removes a contact, as someone deleting it in ConnectWise
// would; later reads of it answer 404. It reports whether it existed.
func (s *Server) DeleteContact(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.contacts[id]
	delete(s.contacts, id)
	if i, found := slices.BinarySearch(s.ids, id); found {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	return ok
}

// getContact serves GET /company/contacts/{id}: the contact object itself
// (fields= trims it), or 404 NotFound.
func (s *Server) getContact(w http.ResponseWriter, r *http.Request, idText string) {
	id, err := strconv.Atoi(idText)
	if err != nil || strconv.Itoa(id) != idText {
		writeError(w, http.StatusBadRequest, "InvalidObject", fmt.Sprintf("Invalid contact id %q", idText), nil)
		return
	}
	var fields []string
	if f := r.URL.Query().Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	s.mu.Lock()
	c := s.contacts[id]
	var out map[string]any
	if c != nil {
		out = s.contactJSON(c, fields)
	}
	s.mu.Unlock()
	if c == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Contact record with id %d not found", id), nil)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
