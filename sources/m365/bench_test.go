package m365_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/sources"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// BenchmarkAccounts100k reads 100,000 users from the fake, all users and
// then the transitive members of one group nesting eight others, and
// reports users per second and bytes allocated per user. The fake runs in
// the same process, so its allocations are included in B/user.
func BenchmarkAccounts100k(b *testing.B) {
	if testing.Short() {
		b.Skip("100,000 users: skipped in -short")
	}
	const users = 100000
	srv := m365test.NewServer(m365test.Options{})
	b.Cleanup(srv.Close)
	srv.Default().Generate(m365test.GenOptions{Seed: 100000, Users: users, Groups: 8, Hybrid: users / 2, Admins: 5})
	for _, bc := range []struct {
		name string
		sel  sources.Selection
	}{
		{"all users", sources.Selection{}},
		{"nested group", sources.Selection{Groups: []string{"All Staff"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := newSource(b, srv)
			ctx := context.Background()
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			n := 0
			for b.Loop() {
				for _, err := range src.Accounts(ctx, bc.sel) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if n%users != 0 {
				b.Fatalf("read %d accounts, not a multiple of %d", n, users)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "users/s")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/user")
			b.ReportMetric(float64(src.Stats().Requests)/float64(n/users), "requests/read")
		})
	}

	b.Run("delta full read", func(b *testing.B) {
		src := newSource(b, srv)
		ctx := context.Background()
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		n := 0
		for b.Loop() {
			seq, res := src.Delta(ctx, sources.Selection{}, "")
			for _, err := range seq {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if !res.Complete {
				b.Fatal("delta round incomplete")
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(n)/elapsed.Seconds(), "users/s")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/user")
	})

	// The same pages fetched and discarded by a bare HTTP client: what the
	// fake and the transport cost, to subtract from the figures above.
	b.Run("fake alone", func(b *testing.B) {
		tok := fetchToken(b, srv)
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		pages := 0
		var buf bytes.Buffer
		for b.Loop() {
			next := srv.URL + "/v1.0/users?$top=999&$select=" + url.QueryEscape("id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled,userType,onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,onPremisesSecurityIdentifier,assignedLicenses")
			for next != "" {
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				_, _ = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				body := buf.Bytes()
				next = ""
				if i := bytes.Index(body, []byte(`"@odata.nextLink":"`)); i >= 0 {
					rest := body[i+len(`"@odata.nextLink":"`):]
					next = string(rest[:bytes.IndexByte(rest, '"')])
				}
				pages++
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		n := float64(pages/101) * users
		b.ReportMetric(n/elapsed.Seconds(), "users/s")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/user")
	})
}

func fetchToken(b *testing.B, srv *m365test.Server) string {
	resp, err := srv.Client().PostForm(srv.URL+"/"+srv.TenantID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {srv.ClientSecret},
		"scope": {"https://graph.microsoft.com/.default"},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}
