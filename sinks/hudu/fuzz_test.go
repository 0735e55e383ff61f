package hudu_test

import (
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/hudu"
)

func FuzzDecodeAssetPasswords(f *testing.F) {
	f.Add([]byte(`{"asset_passwords":[{"id":12,"company_id":7,"name":"Jane","username":"jdoe","password":"pw","password_type":"Active Directory","archived":false,"in_portal":false}]}`))
	f.Add([]byte(`{"asset_passwords":[{"id":"13","company_id":"7","name":null,"username":null,"password_type":null,"archived":null}]}`))
	f.Add([]byte(`{"asset_passwords":[]}`))
	f.Add([]byte(`{"error":"Parameter missing","details":"param is missing"}`))
	f.Add([]byte(`Retry later`))
	f.Add([]byte(`{"asset_passwords":[{"id":0}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ps, err := hudu.DecodeAssetPasswords(body)
		if err != nil {
			if strings.Contains(err.Error(), `"`) && strings.Contains(string(body), "password") {
				// Errors describe, never quote: a quote could carry a value.
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		for _, p := range ps {
			if p.ID <= 0 {
				t.Fatalf("asset password without id decoded: %+v", p)
			}
			if p.Username != strings.TrimSpace(p.Username) || p.PasswordType != strings.TrimSpace(p.PasswordType) {
				t.Fatalf("fields not trimmed: %+v", p)
			}
		}
	})
}

func FuzzDecodeAssetPassword(f *testing.F) {
	f.Add([]byte(`{"asset_password":{"id":99,"company_id":7,"name":"Jane","password_type":"Office 365"}}`))
	f.Add([]byte(`{"asset_password":null}`))
	f.Add([]byte(`{"errors":{"name":["can't be blank"]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := hudu.DecodeAssetPassword(body)
		if err == nil && p.ID <= 0 {
			t.Fatal("asset password without id decoded")
		}
	})
}
