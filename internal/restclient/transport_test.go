package restclient

import (
	"errors"
	"testing"
)

func TestCheckURL(t *testing.T) {
	cases := []struct {
		url      string
		insecure bool
		ok       bool
		insecErr bool
	}{
		{"https://api.itglue.com", false, true, false},
		{"https://10.0.0.5:8443/api", false, true, false},
		{"http://127.0.0.1:8080", false, true, false},
		{"http://127.9.9.9", false, true, false},
		{"http://[::1]:9000/x", false, true, false},
		{"http://localhost:3000", false, true, false},
		{"http://LOCALHOST.", false, true, false},
		{"http://any-host", false, false, true},
		{"http://10.0.0.5", false, false, true},
		{"http://127.0.0.1.evil.example", false, false, true},
		{"http://localhost.evil.example", false, false, true},
		{"http://docs.msp.example", true, true, false},
		{"ftp://host", true, false, false},
		{"not a url", false, false, false},
		{"https://", false, false, false},
	}
	for _, c := range cases {
		err := CheckURL(c.url, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", c.url, c.insecure, err, c.ok)
		}
		if errors.Is(err, ErrInsecureURL) != c.insecErr {
			t.Errorf("CheckURL(%q, %v) = %v, want ErrInsecureURL=%v", c.url, c.insecure, err, c.insecErr)
		}
	}
}
