package restclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureURL marks an API URL that would send credentials in clear.
var ErrInsecureURL = errors.New("credentials are only sent over https")

// CheckURL accepts an API base URL that credentials may be sent to: an
// https:// URL; an http:// URL only to a loopback host (127.0.0.0/8, ::1,
// localhost) or when allowInsecure says the operator chose it for this
// integration. The error says why and how to fix it.
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure || IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: %w: use https://, or set allow_insecure_http: true on this integration if the host is reached over a network you trust", raw, ErrInsecureURL)
	}
	return fmt.Errorf("%q is not an http(s) URL", raw)
}

// IsLoopback reports whether host (a name or an IP, without port) is this
// machine: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
