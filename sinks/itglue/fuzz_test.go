package itglue_test

import (
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/itglue"
)

func FuzzDecodePasswordPage(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"12","type":"passwords","attributes":{"organization-id":7,"name":"Jane","username":"jdoe","password-category-id":5,"password-category-name":"Active Directory","restricted":false,"my-glue":false,"archived":false}}],"meta":{"current-page":1,"next-page":2,"total-pages":2,"total-count":2}}`))
	f.Add([]byte(`{"data":[{"id":13,"type":"passwords","attributes":{"name":null,"username":null,"password-category-id":null,"password-category-name":null,"restricted":null}}],"meta":{"next-page":null}}`))
	f.Add([]byte(`{"data":[],"meta":{"next-page":"3"}}`))
	f.Add([]byte(`{"errors":[{"status":"403","title":"Forbidden"}]}`))
	f.Add([]byte(`{"data":[{"id":"1","type":"organizations"}]}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := itglue.DecodePasswordPage(body)
		if err != nil {
			return
		}
		if p.NextPage < 0 {
			t.Fatalf("negative next page %d", p.NextPage)
		}
		for _, pw := range p.Passwords {
			if pw.ID == "" {
				t.Fatalf("password without id decoded: %+v", pw)
			}
			if pw.Username != strings.TrimSpace(pw.Username) || pw.CategoryName != strings.TrimSpace(pw.CategoryName) {
				t.Fatalf("fields not trimmed: %+v", pw)
			}
		}
	})
}

func FuzzDecodePassword(f *testing.F) {
	f.Add([]byte(`{"data":{"id":"99","type":"passwords","attributes":{"name":"Jane","username":"jdoe","password-category-id":"5"}}}`))
	f.Add([]byte(`{"data":[{"id":"99","type":"passwords","attributes":{}}]}`))
	f.Add([]byte(`{"data":[]}`))
	f.Add([]byte(`{"data":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pw, err := itglue.DecodePassword(body)
		if err == nil && pw.ID == "" {
			t.Fatal("password without id decoded")
		}
	})
}

func FuzzDecodeCategories(f *testing.F) {
	f.Add([]byte(`{"data":[{"id":"5","type":"password-categories","attributes":{"name":"Active Directory"}}],"meta":{"next-page":null}}`))
	f.Add([]byte(`{"data":[{"id":5,"attributes":{"name":" "}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cats, next, err := itglue.DecodeCategories(body)
		if err != nil {
			return
		}
		if next < 0 || cats == nil {
			t.Fatalf("next %d, cats %v", next, cats)
		}
	})
}
