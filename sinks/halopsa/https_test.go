package halopsa_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks/halopsa"
)

// TestNewRefusesInsecureURL: the client secret and the token go only to
// https:// URLs, or over http:// to this machine or when
// AllowInsecureHTTP says so; the authorisation server is checked like the
// resource server.
func TestNewRefusesInsecureURL(t *testing.T) {
	for _, tt := range []struct {
		name     string
		url      string
		authURL  string
		insecure bool
		bad      string // the URL the error names; "" when New must succeed
	}{
		{"https", "https://acme.halopsa.com", "", false, ""},
		{"https with its auth server", "https://acme.halopsa.com", "https://acme.halopsa.com/auth", false, ""},
		{"loopback", "http://127.0.0.1:8083", "", false, ""},
		{"loopback auth server", "https://acme.halopsa.com", "http://localhost:8084/auth", false, ""},
		{"http", "http://halo.msp.example", "", false, "http://halo.msp.example"},
		{"http allowed", "http://halo.msp.example", "", true, ""},
		{"http auth server", "https://acme.halopsa.com", "http://auth.msp.example/auth", false, "http://auth.msp.example/auth"},
		{"http auth server allowed", "https://acme.halopsa.com", "http://auth.msp.example/auth", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := halopsa.New(halopsa.Config{URL: tt.url, AuthURL: tt.authURL, ClientID: "id", ClientSecret: "secret", AllowInsecureHTTP: tt.insecure})
			if tt.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, restclient.ErrInsecureURL) {
				t.Fatalf("err = %v, want ErrInsecureURL", err)
			}
			for _, want := range []string{"HaloPSA: ", tt.bad, "allow_insecure_http"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
