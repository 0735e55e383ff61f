package autotasktest

import (
	"strconv"
	"strings"
	"testing"
)

func TestGetContactAndDelete(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddCompany(123, "Acme")
	id := s.AddContact(Contact{CompanyID: 123, FirstName: "Jane", LastName: "Doe", EmailAddress: "jane@acme.example"})
	one := "/ATServicesRest/V1.0/Contacts/" + strconv.FormatInt(id, 10)
	if status, body := call(t, s, "GET", one, "", nil); status != 200 || !strings.Contains(body, `"item":{`) || !strings.Contains(body, `"companyID":123`) || !strings.Contains(body, `"isActive":0`) {
		t.Fatalf("%d %s", status, body)
	}
	if got, ok := s.Contact(id); !ok || got.FirstName != "Jane" {
		t.Fatalf("Contact(%d) = %+v, %v", id, got, ok)
	}
	if !s.DeleteContact(id) || s.DeleteContact(id) {
		t.Fatal("DeleteContact must report the first delete only")
	}
	if status, body := call(t, s, "GET", one, "", nil); status != 200 || !strings.Contains(body, `"item":null`) {
		t.Fatalf("deleted contact: %d %s", status, body)
	}
	if status, _ := call(t, s, "GET", one, "", map[string]string{"Secret": "wrong"}); status != 401 {
		t.Fatalf("wrong secret: %d", status)
	}
}
