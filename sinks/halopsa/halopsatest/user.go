package halopsatest

import (
	"net/http"
	"strings"
)

// User returns a copy of the stored user id.
func (s *Server) User(id int) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return User{}, false
	}
	return *u, true
}

// DeleteUser removes a user, as someone deleting it in Halo would; later
// reads of it answer 404. It reports whether it existed.
func (s *Server) DeleteUser(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[id]
	delete(s.users, id)
	return ok
}

// getUser serves GET /api/Users/{id}: the user object itself, inactive
// or not, or 404 (its body shape varies on real instances; a plain text
// here, as for a missing client).
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := intParam(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/api/users/"))
	if !ok {
		badRequest(w, "id must be an integer")
		return
	}
	s.mu.Lock()
	u := s.users[id]
	var out map[string]any
	if u != nil {
		out = userJSON(u, s.clients[u.ClientID])
	}
	s.mu.Unlock()
	if u == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
