package hudutest

import (
	"strconv"
	"strings"
	"testing"
)

func TestUpdateContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddCompany(7, "Acme")
	id := s.AddPassword(AssetPassword{CompanyID: 7, Name: "Jane", Username: "jdoe", Password: "OldSecret", Description: "placeholder", PasswordType: "Active Directory"})
	one := "/asset_passwords/" + strconv.Itoa(id)
	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"needs the wrapper", "PUT", one, `{"password":"NewSecret"}`, 400, "param is missing or the value is empty: asset_password"},
		{"empty wrapper", "PUT", one, `{"asset_password":{}}`, 400, "Parameter missing"},
		{"not JSON", "PUT", one, `password=NewSecret`, 400, "Invalid JSON"},
		{"unknown id", "PUT", "/asset_passwords/999999", `{"asset_password":{"password":"NewSecret"}}`, 404, "Record not found"},
		{"blank password", "PUT", one, `{"asset_password":{"password":""}}`, 422, `"password":["can't be blank"]`},
		{"unknown company", "PUT", one, `{"asset_password":{"password":"NewSecret","company_id":99}}`, 422, `"company":["must exist"]`},
		{"updated", "PUT", one, `{"asset_password":{"password":"NewSecret","description":"rotated","name":"Jane","company_id":7}}`, 200, `"password":"NewSecret"`},
		{"PATCH too", "PATCH", one, `{"asset_password":{"password":"PatchedSecret"}}`, 200, `"description":"rotated"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, tt.method, tt.path, s.APIKey, tt.body)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	p, ok := s.Password(id)
	if !ok || p.Password != "PatchedSecret" || p.Description != "rotated" || p.Name != "Jane" || p.Username != "jdoe" || p.PasswordType != "Active Directory" || p.CompanyID != 7 {
		t.Fatalf("stored %+v", p)
	}
	if _, _, body := do(t, s, "GET", one, s.APIKey, ""); !strings.Contains(body, `"password":"PatchedSecret"`) {
		t.Fatalf("show after update: %s", body)
	}
	if got := s.Count(KindUpdatePassword); got != int64(len(tests)) {
		t.Errorf("%d updates counted, want %d", got, len(tests))
	}
	if status, _, _ := do(t, s, "PUT", one, "wrong", `{"asset_password":{"password":"x"}}`); status != 401 {
		t.Errorf("wrong key: %d", status)
	}
	if !s.DeletePassword(id) || s.DeletePassword(id) {
		t.Fatal("DeletePassword must report the first delete only")
	}
	for _, m := range []string{"GET", "PUT"} {
		if status, _, _ := do(t, s, m, one, s.APIKey, `{"asset_password":{"password":"x"}}`); status != 404 {
			t.Errorf("%s of a deleted entry: %d", m, status)
		}
	}
}
