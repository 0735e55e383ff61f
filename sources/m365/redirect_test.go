package m365_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/internal/restclient"
	"github.com/msp-tools/autoimport/internal/restclient/redirecttest"
	"github.com/msp-tools/autoimport/sources/m365"
)

// The client secret (re-posted by a 307 on the token request) and the
// bearer token (every Graph call, the password reset included) never
// follow a redirect to another host, whichever HTTP client fetches the
// token: each call fails naming the integration and the target, and
// nothing reaches the target.
func TestCredentialsNeverFollowARedirect(t *testing.T) {
	p := newPWTenant(t)
	isToken := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") }
	read := func(s *m365.Source) error { return s.Check(context.Background()) }
	reset := func(s *m365.Source) error { return s.SetPassword(context.Background(), p.user, rotated) }
	clients := map[string]func(*m365.Config){
		"own token client":   func(*m365.Config) {},
		"given token client": func(c *m365.Config) { c.HTTPClient = &http.Client{Transport: c.Transport} },
	}
	for name, client := range clients {
		for _, tt := range []struct {
			name        string
			redirect    func(*http.Request) bool
			call        func(*m365.Source) error
			integration string
		}{
			{"token", isToken, read, "Microsoft identity platform"},
			{"read", func(r *http.Request) bool { return !isToken(r) }, read, "Graph"},
			{"password reset", func(r *http.Request) bool { return r.Method == http.MethodPatch }, reset, "Graph"},
		} {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				rd := redirecttest.Start(t, redirecttest.Forward(t, p.srv.URL), tt.redirect)
				src := newSource(t, p.srv, client, func(c *m365.Config) {
					c.LoginURL, c.GraphURL, c.Scope = rd.URL, rd.URL, p.srv.URL+"/.default"
				})
				err := tt.call(src)
				if !errors.Is(err, restclient.ErrCrossOriginRedirect) {
					t.Fatalf("err = %v, want ErrCrossOriginRedirect", err)
				}
				rd.CheckRefused(t, err, tt.integration, p.srv.ClientSecret, rotated)
				if errors.Is(err, m365.ErrOutcomeUnknown) {
					t.Errorf("a refused redirect is reported as a reset that may have happened: %v", err)
				}
			})
		}
	}
}
