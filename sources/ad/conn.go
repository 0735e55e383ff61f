package ad

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// session is one bound LDAP connection of an Accounts call. It reconnects
// once when the connection drops.
type session struct {
	src         *Source
	conn        *ldap.Conn
	reconnected bool
	// reused marks a connection taken from the source's idle ones;
	// closing marks one that a context's end closes or has closed, which
	// is never kept idle.
	reused, closing bool
	// requests counts the requests sent: each page of a search, each
	// DirSync batch.
	requests int
}

// errorf wraps err naming the integration and the customer.
func (s *Source) errorf(err error, format string, a ...any) error {
	return fmt.Errorf("AD: customer %s: %s: %w", s.cfg.Customer, fmt.Sprintf(format, a...), err)
}

func (s *Source) open(ctx context.Context) (*session, error) {
	conn, err := s.dialBind(ctx)
	if err != nil {
		return nil, err
	}
	return &session{src: s, conn: conn}, nil
}

// openReusing is open for the short exchanges of password changes: it
// takes a connection kept idle when there is one. The caller releases
// the session when its exchange ended cleanly, else closes it.
func (s *Source) openReusing(ctx context.Context) (*session, error) {
	if conn := s.idle.take(); conn != nil {
		return &session{src: s, conn: conn, reused: true}, nil
	}
	return s.open(ctx)
}

func (s *Source) dialBind(ctx context.Context) (*ldap.Conn, error) {
	return s.dialAs(ctx, s.cfg.BindDN, s.cfg.BindPassword, func(err error) error {
		return s.errorf(explainBind(err), "bind as %q", s.cfg.BindDN)
	})
}

// dialAs connects (with StartTLS when configured) and binds as name. A
// refused bind is reported as bindErr makes it of the LDAP error.
func (s *Source) dialAs(ctx context.Context, name, password string, bindErr func(error) error) (*ldap.Conn, error) {
	dialer := &net.Dialer{Timeout: s.cfg.DialTimeout}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < s.cfg.DialTimeout {
		dialer.Deadline = dl
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(dialer)}
	if s.tlsCfg != nil && strings.EqualFold(s.url.Scheme, "ldaps") {
		opts = append(opts, ldap.DialWithTLSConfig(s.tlsCfg.Clone()))
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf(err, "connect %s", s.url.Host)
	}
	conn, err := ldap.DialURL(s.cfg.URL, opts...)
	if err != nil {
		return nil, s.errorf(err, "connect %s (check url, firewall and, for ldaps, the CA bundle and that the host name is in the DC certificate)", s.url.Host)
	}
	// Close the connection if ctx ends while we are still setting it up.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetTimeout(s.cfg.BindTimeout)
	if s.cfg.StartTLS {
		if err := conn.StartTLS(s.tlsCfg.Clone()); err != nil {
			conn.Close()
			return nil, s.errorf(err, "StartTLS with %s (check the CA bundle and that the host name is in the DC certificate)", s.url.Host)
		}
	}
	if err := conn.Bind(name, password); err != nil {
		conn.Close()
		return nil, bindErr(err)
	}
	conn.SetTimeout(s.cfg.SearchTimeout)
	if err := ctx.Err(); err != nil {
		conn.Close()
		return nil, s.errorf(err, "bind as %q", name)
	}
	return conn, nil
}

func (ss *session) close() {
	if ss.conn != nil {
		ss.conn.Close()
		ss.conn = nil
	}
}

// stopped stops a context.AfterFunc that closes the connection when the
// context ends, noting when it is too late.
func (ss *session) stopped(stop func() bool) {
	if !stop() {
		ss.closing = true
	}
}

// release keeps a session whose exchanges ended cleanly, every answer
// read, for the source's next exchange; a later close does nothing.
func (ss *session) release() {
	if ss.closing {
		ss.close()
	}
	if ss.conn != nil {
		ss.src.idle.put(ss.conn)
		ss.conn = nil
	}
}

// reconnectAfter reports whether err means the connection went away
// (not a request that timed out, not the context ending) and a new one
// took its place, once per session: the request may then be asked again
// if asking it twice changes nothing.
func (ss *session) reconnectAfter(ctx context.Context, err error) bool {
	return err != nil && (isDropped(err) || ss.conn.IsClosing()) && !isTimeout(err) && ctx.Err() == nil && ss.reconnect(ctx)
}

// reconnect replaces a dropped connection, once per session.
func (ss *session) reconnect(ctx context.Context) bool {
	if ss.reconnected {
		return false
	}
	ss.reconnected = true
	ss.conn.Close()
	conn, err := ss.src.dialBind(ctx)
	if err != nil {
		return false
	}
	ss.conn = conn
	return true
}

// isDropped reports whether err means the connection is gone rather than
// that the server refused the request.
func isDropped(err error) bool {
	if err == nil || isTimeout(err) {
		return false
	}
	if ldap.IsErrorAnyOf(err, ldap.ErrorNetwork) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, net.ErrClosed)
}

// isTimeout reports a request that got no answer in time (go-ldap reports
// its own per-request timeout as a network error).
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out")
}

// searchSpec is one logical search, possibly several pages.
type searchSpec struct {
	what   string // for errors: "users of the selection", "privileged groups"
	base   string
	scope  int
	filter string
	attrs  []string
	// controls go with every page (Show Deleted, Extended DN).
	controls []ldap.Control
}

// search streams every entry of spec page by page, calling fn for each. fn
// returns false to stop early; the server's paging state is then released.
// Only one page is held in memory at a time.
func (ss *session) search(ctx context.Context, spec searchSpec, fn func(*ldap.Entry) bool) error {
	paging := ldap.NewControlPaging(uint32(ss.src.cfg.PageSize))
	for page := 1; ; page++ {
		entries, next, err := ss.page(ctx, spec, paging)
		if ss.reconnectAfter(ctx, err) {
			// The cookie may still be valid on the new connection (it is on
			// servers that keep paging state per search, not per
			// connection); a server that refuses it fails the retry below.
			entries, next, err = ss.page(ctx, spec, paging)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return ss.src.errorf(explainSearch(err), "search %s under %q page %d", spec.what, spec.base, page)
		}
		for i, e := range entries {
			entries[i] = nil
			if !fn(e) {
				if len(next) > 0 {
					ss.abandon(spec, next)
				}
				return nil
			}
		}
		if len(next) == 0 {
			return nil
		}
		paging.SetCookie(next)
		if err := ctx.Err(); err != nil {
			ss.abandon(spec, next)
			return ss.src.errorf(err, "search %s under %q page %d", spec.what, spec.base, page+1)
		}
	}
}

// page runs one page request and returns its entries and the next cookie.
func (ss *session) page(ctx context.Context, spec searchSpec, paging *ldap.ControlPaging) ([]*ldap.Entry, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ss.src.cfg.SearchTimeout)
	defer cancel()
	req := ldap.NewSearchRequest(spec.base, spec.scope, ldap.NeverDerefAliases, 0, int(ss.src.cfg.SearchTimeout/time.Second), false,
		spec.filter, spec.attrs, append([]ldap.Control{paging}, spec.controls...))
	ss.requests++
	resp := ss.conn.SearchAsync(ctx, req, 64)
	var entries []*ldap.Entry
	var cookie []byte
	sawPaging := false
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			entries = append(entries, e)
		}
		if c := ldap.FindControl(resp.Controls(), ldap.ControlTypePaging); c != nil {
			if pc, ok := c.(*ldap.ControlPaging); ok {
				sawPaging = true
				cookie = pc.Cookie
			}
		}
	}
	err := resp.Err()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if isTimeout(err) {
			return nil, nil, fmt.Errorf("no answer within %s (raise search_timeout, or check the DC's load): %w", ss.src.cfg.SearchTimeout, err)
		}
		return nil, nil, err
	}
	if ss.conn.IsClosing() && !sawPaging {
		return nil, nil, ldap.NewError(ldap.ErrorNetwork, errors.New("connection closed during search"))
	}
	// A server that ignores paging answers everything in one page without
	// a control: that is a complete result, unless the connection went away.
	return entries, cookie, nil
}

// abandon releases the server's paging state: a request with page size 0
// and the last cookie.
func (ss *session) abandon(spec searchSpec, cookie []byte) {
	stop := ldap.NewControlPaging(0)
	stop.SetCookie(cookie)
	req := ldap.NewSearchRequest(spec.base, spec.scope, ldap.NeverDerefAliases, 0, 0, false,
		spec.filter, spec.attrs, append([]ldap.Control{stop}, spec.controls...))
	ss.requests++
	// Best effort: do not hang a finished read on a DC that does not answer.
	ss.conn.SetTimeout(5 * time.Second)
	_, _ = ss.conn.Search(req)
	ss.conn.SetTimeout(ss.src.cfg.SearchTimeout)
}

// tidyError keeps the wrapped LDAP error for errors.As but drops the NUL
// byte and trailing whitespace AD appends to diagnostic messages.
type tidyError struct{ err error }

func (t tidyError) Error() string { return strings.TrimRight(t.err.Error(), "\x00\r\n\t ") }
func (t tidyError) Unwrap() error { return t.err }

// adDataCode finds AD's sub-code ("data 52e") in a diagnostic message.
var adDataCode = regexp.MustCompile(`data ([0-9a-fA-F]{3,8})`)

var bindSubcodes = map[string]string{
	"525": "no such user",
	"52e": "bad password or user name",
	"530": "logon not permitted at this time",
	"531": "logon not permitted from this workstation",
	"532": "password expired",
	"533": "account disabled",
	"701": "account expired",
	"773": "password must be reset",
	"775": "account locked out",
}

// explainBind turns a bind failure into an error saying what to fix. The
// password never appears in it.
func explainBind(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err
	}
	err = tidyError{err}
	switch le.ResultCode {
	case ldap.LDAPResultInvalidCredentials:
		detail := ""
		if m := adDataCode.FindStringSubmatch(le.Err.Error()); m != nil {
			code := strings.ToLower(m[1])
			detail = " data " + code
			if d, ok := bindSubcodes[code]; ok {
				detail += " (" + d + ")"
			}
		}
		return fmt.Errorf("LDAP result 49 invalid credentials%s: check bind_dn/bind_password: %w", detail, err)
	case ldap.LDAPResultStrongAuthRequired:
		return fmt.Errorf("LDAP result 8 stronger authentication required: the DC refuses simple binds without TLS: use ldaps:// or start_tls: %w", err)
	case ldap.LDAPResultConfidentialityRequired:
		return fmt.Errorf("LDAP result 13 confidentiality required: use ldaps:// or start_tls: %w", err)
	}
	return err
}

// explainSearch adds advice to the search failures a technician can fix.
func explainSearch(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err
	}
	err = tidyError{err}
	switch le.ResultCode {
	case ldap.LDAPResultNoSuchObject:
		return fmt.Errorf("LDAP result 32 no such object: check base_dn and the selected OUs and groups: %w", err)
	case ldap.LDAPResultSizeLimitExceeded:
		return fmt.Errorf("LDAP result 4 size limit exceeded: the server ignored paging: %w", err)
	case ldap.LDAPResultOperationsError, ldap.LDAPResultInsufficientAccessRights:
		return fmt.Errorf("LDAP result %d: the bind account may lack read rights: %w", le.ResultCode, err)
	}
	return err
}
