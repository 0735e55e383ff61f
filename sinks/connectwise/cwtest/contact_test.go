package cwtest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestGetContactContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddCompany(250, "Acme", "Acme Ltd")
	id := s.AddContact(Contact{CompanyID: 250, FirstName: "Jane", LastName: "Doe", Email: "jane@acme.example", Inactive: true})
	one := APIPath + "/company/contacts/" + strconv.Itoa(id)

	resp, body := get(t, s, one, nil)
	var c struct {
		ID           int    `json:"id"`
		FirstName    string `json:"firstName"`
		InactiveFlag bool   `json:"inactiveFlag"`
		Company      struct {
			ID         int    `json:"id"`
			Identifier string `json:"identifier"`
			Name       string `json:"name"`
		} `json:"company"`
		CommunicationItems []struct {
			Value             string `json:"value"`
			CommunicationType string `json:"communicationType"`
		} `json:"communicationItems"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if c.ID != id || c.FirstName != "Jane" || !c.InactiveFlag || c.Company.ID != 250 || c.Company.Identifier != "Acme" || c.Company.Name != "Acme Ltd" ||
		len(c.CommunicationItems) != 1 || c.CommunicationItems[0].Value != "jane@acme.example" {
		t.Fatalf("contact %+v", c)
	}
	if resp, body := get(t, s, one+"?fields=id,company/id", nil); resp.StatusCode != 200 || strings.Contains(body, "firstName") || !strings.Contains(body, `"company"`) {
		t.Fatalf("fields: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		status     int
		contains   string
	}{
		{"unknown id", APIPath + "/company/contacts/99", nil, 404, `"code":"NotFound"`},
		{"not an id", APIPath + "/company/contacts/abc", nil, 400, "InvalidObject"},
		{"no clientId", one, map[string]string{"clientId": ""}, 401, "ClientId is required"},
	} {
		if resp, body := get(t, s, tc.path, tc.hdr); resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	if got, ok := s.Contact(id); !ok || got.FirstName != "Jane" {
		t.Fatalf("Contact(%d) = %+v, %v", id, got, ok)
	}
	if !s.DeleteContact(id) || s.DeleteContact(id) {
		t.Fatal("DeleteContact must report the first delete only")
	}
	if resp, _ := get(t, s, one, nil); resp.StatusCode != 404 {
		t.Fatalf("deleted contact: %d", resp.StatusCode)
	}
	if n := s.Count(KindGetContact); n != 6 {
		t.Errorf("%d gets counted, want 6", n)
	}
}
