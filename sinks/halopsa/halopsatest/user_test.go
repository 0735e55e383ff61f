package halopsatest

import (
	"strconv"
	"strings"
	"testing"
)

func TestGetUserContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddClient(12, "Acme")
	id := s.AddUser(User{ClientID: 12, FirstName: "Jane", Surname: "Doe", EmailAddress: "jane@acme.example", Inactive: true})
	tok := s.tokenFor(t)
	one := "/api/Users/" + strconv.Itoa(id)
	status, body := do(t, s, tok, "GET", one, "")
	for _, want := range []string{`"id":` + strconv.Itoa(id), `"client_id":12`, `"client_name":"Acme"`, `"inactive":true`, `"emailaddress":"jane@acme.example"`, `"site_name":"Main"`} {
		if status != 200 || !strings.Contains(body, want) {
			t.Fatalf("%d %s lacks %s", status, body, want)
		}
	}
	for _, tc := range []struct {
		name, tok, path string
		status          int
	}{
		{"no token", "", one, 401},
		{"unknown id", tok, "/api/Users/999999", 404},
		{"not an integer", tok, "/api/Users/95.0", 400},
	} {
		if status, body := do(t, s, tc.tok, "GET", tc.path, ""); status != tc.status {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if u, ok := s.User(id); !ok || u.FirstName != "Jane" {
		t.Fatalf("User(%d) = %+v, %v", id, u, ok)
	}
	if !s.DeleteUser(id) || s.DeleteUser(id) {
		t.Fatal("DeleteUser must report the first delete only")
	}
	if status, _ := do(t, s, tok, "GET", one, ""); status != 404 {
		t.Fatalf("deleted user: %d", status)
	}
	if n := s.Count(KindGetUser); n != 5 {
		t.Errorf("%d gets counted, want 5", n)
	}
}
