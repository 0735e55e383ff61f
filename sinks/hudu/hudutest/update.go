package hudutest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Password returns a copy of the stored asset password id, its value
// included, so a test can check what a client wrote.
func (s *Server) Password(id int) (AssetPassword, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if p == nil {
		return AssetPassword{}, false
	}
	return *p, true
}

// DeletePassword removes an asset password, as a technician deleting it in
// Hudu would; later shows and updates of it answer 404. It reports whether
// the entry existed.
func (s *Server) DeletePassword(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.passwords[id]
	delete(s.passwords, id)
	return ok
}

// updatePassword serves PUT (and PATCH) /api/v1/asset_passwords/{id}: the
// fields inside {"asset_password":{…}} replace the entry's, fields not sent
// stay as they are, and the answer is the updated record.
func (s *Server) updatePassword(w http.ResponseWriter, r *http.Request, idText string) {
	id, err := strconv.Atoi(idText)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
		return
	}
	var doc struct {
		AssetPassword map[string]any `json:"asset_password"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &doc); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid JSON"})
		return
	}
	if len(doc.AssetPassword) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Parameter missing", "details": "param is missing or the value is empty: asset_password"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passwords[id]
	if p == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Record not found"})
		return
	}
	next := *p
	errs := map[string][]string{}
	for k, v := range doc.AssetPassword {
		text, _ := v.(string)
		switch k {
		case "password":
			if text == "" {
				errs["password"] = append(errs["password"], "can't be blank")
			}
			next.Password = text
		case "name":
			if strings.TrimSpace(text) == "" {
				errs["name"] = append(errs["name"], "can't be blank")
			}
			next.Name = text
		case "description":
			next.Description = text
		case "username":
			next.Username = text
		case "url":
			next.URL = text
		case "password_type":
			next.PasswordType = text
		case "archived":
			next.Archived, _ = v.(bool)
		case "company_id":
			n := 0
			switch c := v.(type) {
			case float64:
				if c == float64(int(c)) {
					n = int(c)
				}
			case string:
				n, _ = strconv.Atoi(c)
			}
			if s.companies[n] == nil {
				errs["company"] = append(errs["company"], "must exist")
			}
			next.CompanyID = n
		}
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": errs})
		return
	}
	*p = next
	writeJSON(w, http.StatusOK, map[string]any{"asset_password": s.resourceLocked(next)})
}
