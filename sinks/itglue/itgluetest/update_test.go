package itgluetest

import (
	"strings"
	"testing"
)

func TestUpdateContract(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	s.AddOrganization(7, "Acme")
	s.AddOrganization(8, "Bravo")
	id := s.AddPassword(Password{OrganizationID: 7, Name: "Jane", Username: "jdoe", Value: "OldSecret", Notes: "placeholder"}, "")
	one := "/passwords/" + itoa(id)
	patch := func(attrs string) string { return `{"data":{"type":"passwords","attributes":` + attrs + `}}` }
	tests := []struct {
		name, path, ctype, body string
		status                  int
		contains, lacks         string
	}{
		{"needs JSON:API media type", one, "application/json", patch(`{"password":"NewSecret"}`), 415, "application/vnd.api+json", ""},
		{"needs the data wrapper", one, MediaType, `{"password":"NewSecret"}`, 400, "data resource object", ""},
		{"needs the passwords type", one, MediaType, `{"data":{"type":"contacts","attributes":{"password":"NewSecret"}}}`, 422, "type must be passwords", ""},
		{"data id must match", one, MediaType, `{"data":{"id":"1","type":"passwords","attributes":{"password":"NewSecret"}}}`, 409, "does not match", ""},
		{"blank password", one, MediaType, patch(`{"password":""}`), 422, "password can't be blank", ""},
		{"unknown id", "/passwords/999999", MediaType, patch(`{"password":"NewSecret"}`), 404, "Record not found", ""},
		{"nested route of another organization", "/organizations/8/relationships/passwords/" + itoa(id), MediaType, patch(`{"password":"NewSecret"}`), 404, "Record not found", ""},
		{"organization cannot move", one, MediaType, patch(`{"organization-id":8}`), 422, "cannot be changed", ""},
		{"updated, value not echoed", one, MediaType, patch(`{"password":"NewSecret","notes":"rotated"}`), 200, `"notes":"rotated"`, "NewSecret"},
		{"nested route", "/organizations/7/relationships/passwords/" + itoa(id), MediaType, `{"data":{"id":` + itoa(id) + `,"type":"passwords","attributes":{"password":"NestedSecret"}}}`, 200, `"name":"Jane"`, "NestedSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, "PATCH", tt.path, s.APIKey, tt.ctype, tt.body)
			if status != tt.status || !strings.Contains(body, tt.contains) || (tt.lacks != "" && strings.Contains(body, tt.lacks)) {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
	p, ok := s.Password(id)
	if !ok || p.Value != "NestedSecret" || p.Notes != "rotated" || p.Name != "Jane" || p.Username != "jdoe" {
		t.Fatalf("stored %+v", p)
	}
	if _, _, body := do(t, s, "GET", one+"?show_password=true", s.APIKey, "", ""); !strings.Contains(body, `"password":"NestedSecret"`) {
		t.Fatalf("show after update: %s", body)
	}
	if got := s.Count(KindUpdatePassword); got != int64(len(tests)) {
		t.Errorf("%d updates counted, want %d", got, len(tests))
	}
	if !s.DeletePassword(id) || s.DeletePassword(id) {
		t.Fatal("DeletePassword must report the first delete only")
	}
	if status, _, _ := do(t, s, "GET", one, s.APIKey, "", ""); status != 404 {
		t.Fatalf("show of a deleted entry: %d", status)
	}
	if status, _, _ := do(t, s, "PATCH", one, s.APIKey, MediaType, patch(`{"password":"x"}`)); status != 404 {
		t.Fatalf("update of a deleted entry: %d", status)
	}
}

func TestUpdateWithoutPasswordAccess(t *testing.T) {
	s := NewServer(Options{NoPasswordAccess: true})
	defer s.Close()
	id := s.AddPassword(Password{OrganizationID: 7, Name: "Jane", Value: "OldSecret"}, "")
	status, _, body := do(t, s, "PATCH", "/passwords/"+itoa(id), s.APIKey, MediaType, `{"data":{"type":"passwords","attributes":{"password":"NewSecret"}}}`)
	if status != 403 || !strings.Contains(body, "password access") {
		t.Fatalf("%d %s", status, body)
	}
	if p, _ := s.Password(id); p.Value != "OldSecret" {
		t.Fatalf("value changed to %q", p.Value)
	}
}
