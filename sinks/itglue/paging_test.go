package itglue_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/itglue"
)

// TestPagingGuards runs Index against servers that page wrongly.
func TestPagingGuards(t *testing.T) {
	entry := func(id int) string {
		return fmt.Sprintf(`{"id":"%d","type":"passwords","attributes":{"name":"n%d","username":"u%d","password-category-name":"Active Directory"}}`, id, id, id)
	}
	for _, tt := range []struct {
		name string
		page func(n int) string // body for page[number]=n
		want string
	}{
		{"repeats the same page", func(n int) string {
			return fmt.Sprintf(`{"data":[%s],"meta":{"next-page":%d}}`, entry(1), n+1)
		}, "repeated a page"},
		{"next page goes backwards", func(n int) string {
			return fmt.Sprintf(`{"data":[%s],"meta":{"next-page":1}}`, entry(n))
		}, "does not move forward"},
		{"empty page names a next page", func(n int) string {
			return `{"data":[],"meta":{"next-page":2}}`
		}, "an empty page names a next page"},
		{"html instead of JSON", func(n int) string { return `<html>maintenance</html>` }, "malformed response body"},
		{"error document with 200", func(n int) string { return `{"errors":[{"title":"oops"}]}` }, "no data member"},
		{"next page not a number", func(n int) string {
			return fmt.Sprintf(`{"data":[%s],"meta":{"next-page":"two"}}`, entry(n))
		}, "not a page number"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				var n int
				fmt.Sscan(r.URL.Query().Get("page[number]"), &n)
				w.Header().Set("Content-Type", "application/vnd.api+json")
				fmt.Fprint(w, tt.page(n))
			}))
			defer srv.Close()
			c, err := itglue.New(itglue.Config{URL: srv.URL, APIKey: "k-" + t.Name(), Rate: "1000/s"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Index(context.Background(), acme)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "IT Glue: customer acme: list passwords of organization 7") {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if calls > 3 {
				t.Errorf("%d requests before giving up", calls)
			}
		})
	}
}
