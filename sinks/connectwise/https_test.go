package connectwise_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sinks/connectwise"
)

// TestNewRefusesInsecureURL: the API keys go only to an https:// URL, or
// over http:// to this machine or when AllowInsecureHTTP says so.
func TestNewRefusesInsecureURL(t *testing.T) {
	for _, tt := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://api-na.myconnectwise.net", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080/", false, true},
		{"http://[::1]:8080", false, true},
		{"http://cw.msp.example", false, false},
		{"http://10.0.0.5:8080", false, false},
		{"http://cw.msp.example", true, true},
	} {
		_, err := connectwise.New(connectwise.Config{URL: tt.url, CompanyID: "acme", PublicKey: "pub", PrivateKey: "priv", ClientID: "cid", AllowInsecureHTTP: tt.insecure})
		if tt.ok {
			if err != nil {
				t.Errorf("URL %s (allow insecure %v): %v", tt.url, tt.insecure, err)
			}
			continue
		}
		if !errors.Is(err, restclient.ErrInsecureURL) {
			t.Fatalf("URL %s: err = %v, want ErrInsecureURL", tt.url, err)
		}
		for _, want := range []string{"ConnectWise: ", tt.url, "https://", "allow_insecure_http"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
}
