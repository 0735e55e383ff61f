package hudu_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msp-tools/autoimport/sinks/hudu"
)

// TestServerIgnoringPage: an instance that ignores page answers the same
// full page forever; the client stops at the first repetition.
func TestServerIgnoringPage(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"asset_passwords":[{"id":1,"company_id":7,"name":"a","username":"a"},{"id":2,"company_id":7,"name":"b","username":"b"}]}`)
	}))
	defer srv.Close()
	c, err := hudu.New(hudu.Config{URL: srv.URL, APIKey: "k", Rate: "1000/s", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Index(context.Background(), acme)
	if err == nil || !strings.Contains(err.Error(), "Hudu: customer acme: list asset passwords of company 7 page 2: the server repeated a page") {
		t.Fatalf("err %v", err)
	}
	if calls != 2 {
		t.Errorf("%d requests", calls)
	}
}
