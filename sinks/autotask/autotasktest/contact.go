package autotasktest

// Contact returns a copy of the stored contact id.
func (s *Server) Contact(id int64) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.contacts[id]
	if c == nil {
		return Contact{}, false
	}
	return *c, true
}

// DeleteContact removes a contact, as someone deleting it in Autotask
// would; later reads of it answer {"item":null}. It reports whether it
// existed.
func (s *Server) DeleteContact(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.contacts[id]
	delete(s.contacts, id)
	return ok
}
