package m365_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/sources/m365"
)

// TestNewRefusesInsecureURL: the client secret goes only to an https://
// login URL and the token only to an https:// Graph URL, or over http://
// to this machine or when AllowInsecureHTTP says so.
func TestNewRefusesInsecureURL(t *testing.T) {
	for _, tt := range []struct {
		name            string
		login, graph    string
		insecure        bool
		bad, badSetting string // the URL the error names; "" when New must succeed
	}{
		{"defaults", "", "", false, "", ""},
		{"national cloud", "https://login.microsoftonline.us", "https://graph.microsoft.us", false, "", ""},
		{"loopback", "http://127.0.0.1:8080", "http://localhost:8080/v1.0", false, "", ""},
		{"http login URL", "http://login.msp.example", "", false, "http://login.msp.example", "login URL"},
		{"http Graph URL", "", "http://graph.msp.example", false, "http://graph.msp.example", "Graph URL"},
		{"http allowed", "http://login.msp.example", "http://graph.msp.example", true, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m365.New(m365.Config{Customer: "acme", TenantID: "t", ClientID: "c", ClientSecret: "s",
				LoginURL: tt.login, GraphURL: tt.graph, AllowInsecureHTTP: tt.insecure})
			if tt.bad == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, restclient.ErrInsecureURL) {
				t.Fatalf("err = %v, want ErrInsecureURL", err)
			}
			for _, want := range []string{"Microsoft 365: customer acme:", tt.badSetting, tt.bad, "allow_insecure_http"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
