package restclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURLError(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	cases := []struct {
		name   string
		err    error
		want   string
		secret []string // must not appear
	}{
		{"colons in the query", &url.Error{Op: "Get", URL: "https://api.example/v1/users?key=a:b:c", Err: refused},
			`Get "https://api.example/v1/users": dial tcp 127.0.0.1:1: connect: connection refused`, []string{"key=", "a:b:c", "?"}},
		{"space in the query", &url.Error{Op: "Post", URL: "https://api.example/token?user=x y&pw=s3cr3t", Err: refused},
			`Post "https://api.example/token": dial tcp 127.0.0.1:1: connect: connection refused`, []string{"user=", "x y", "s3cr3t"}},
		{"quote in the query", &url.Error{Op: "Get", URL: `https://api.example/p?q="a b":c&key=K3Y`, Err: refused},
			`Get "https://api.example/p": dial tcp 127.0.0.1:1: connect: connection refused`, []string{"K3Y", "q="}},
		{"fragment and user info", &url.Error{Op: "Get", URL: "https://me:pa55@api.example:8443/a/b?x=1#frag", Err: refused},
			`Get "https://api.example:8443/a/b": dial tcp 127.0.0.1:1: connect: connection refused`, []string{"pa55", "frag", "x=1"}},
		{"no query", &url.Error{Op: "Get", URL: "https://api.example/a", Err: refused},
			`Get "https://api.example/a": dial tcp 127.0.0.1:1: connect: connection refused`, nil},
		{"wrapped", fmt.Errorf("giving up: %w", &url.Error{Op: "Get", URL: "https://api.example/a?key=a:b:c d", Err: refused}),
			`giving up: Get "https://api.example/a": dial tcp 127.0.0.1:1: connect: connection refused`, []string{"a:b:c", "key="}},
		{"not a URL error", fmt.Errorf("wrapped: %w", errors.New("plain ?key=x")), "wrapped: plain ?key=x", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := redactURLError(c.err)
			if got.Error() != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			for _, s := range c.secret {
				if strings.Contains(got.Error(), s) {
					t.Errorf("%q still in %s", s, got)
				}
			}
			if !errors.Is(got, refused) && errors.Is(c.err, refused) {
				t.Errorf("the cause is no longer reachable through %T", got)
			}
		})
	}
}

func TestRedactURLErrorKeepsTimeouts(t *testing.T) {
	err := redactURLError(&url.Error{Op: "Get", URL: "https://h/p?k=v", Err: context.DeadlineExceeded})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v no longer wraps context.DeadlineExceeded", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL != "https://h/p" {
		t.Fatalf("errors.As(*url.Error) = %v", ue)
	}
}
