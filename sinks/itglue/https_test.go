package itglue_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks/itglue"
)

// TestNewRefusesInsecureURL: the API key goes only to an https:// URL, or
// over http:// to this machine or when AllowInsecureHTTP says so.
func TestNewRefusesInsecureURL(t *testing.T) {
	for _, tt := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://api.itglue.com", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080/", false, true},
		{"http://[::1]:8080", false, true},
		{"http://itglue.msp.example", false, false},
		{"http://10.0.0.5:8080", false, false},
		{"http://itglue.msp.example", true, true},
	} {
		_, err := itglue.New(itglue.Config{URL: tt.url, APIKey: "ITG.k", AllowInsecureHTTP: tt.insecure})
		if tt.ok {
			if err != nil {
				t.Errorf("URL %s (allow insecure %v): %v", tt.url, tt.insecure, err)
			}
			continue
		}
		if !errors.Is(err, restclient.ErrInsecureURL) {
			t.Fatalf("URL %s: err = %v, want ErrInsecureURL", tt.url, err)
		}
		for _, want := range []string{"IT Glue: ", tt.url, "https://", "allow_insecure_http"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
}
