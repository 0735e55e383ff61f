package adtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/msp-tools/autoimport/sources/ad"
)

// Defaults of a Server.
const (
	// DefaultMaxPageSize is AD's MaxPageSize under the default query policy.
	DefaultMaxPageSize = 1000
	DefaultBindDN      = "CN=svc-import,CN=Users,DC=corp,DC=example,DC=test"
	DefaultPassword    = "fake-bind-password"
	// DefaultMaxValRange is AD's MaxValRange: the most values of one
	// attribute a search returns before it answers with ranges.
	DefaultMaxValRange = 1500
)

// Options configure a Server. The zero value serves Generate(1, 0) over
// plain LDAP with StartTLS available.
type Options struct {
	// Directory to serve; nil: Generate(1, 0).
	Directory *Directory
	// LDAPS serves TLS from the first byte; otherwise plain LDAP that
	// accepts StartTLS.
	LDAPS bool
	// BindDN and Password are the accepted credentials. The bind name may
	// also be given as the UPN (svc-import@<dns>) or NETBIOS\svc-import,
	// taken from BindDN's CN.
	BindDN, Password string
	// MaxPageSize caps page sizes and unpaged results (default 1000).
	MaxPageSize int
	// Latency delays every search request (each page).
	Latency time.Duration
	// Addr is where clients connect (default 127.0.0.1:0, a random port);
	// a sandbox may fix it.
	Addr string
	// MaxValRange caps the values of one attribute an entry carries
	// (default 1500, AD's MaxValRange): more come as ranges, e.g.
	// member;range=0-1499, and are read with range retrieval.
	MaxValRange int
}

// Stats counts what clients asked for. Safe for concurrent use.
type Stats struct {
	Binds, FailedBinds, Searches, Pages, Entries, Abandons, SizeLimitExceeded int64
	// Modifies counts modify requests; PasswordChanges those that set a
	// password, PasswordRefusals those that asked to and were refused.
	Modifies, PasswordChanges, PasswordRefusals int64
	// DirSyncs counts DirSync requests (each batch of a read is one).
	DirSyncs int64
}

// Server is a running fake domain controller.
type Server struct {
	dir      *Directory
	opts     Options
	ldap     *gldap.Server
	tlsCfg   *tls.Config
	caPEM    []byte
	listener net.Listener // the public (proxy) listener
	backend  string

	binds, failedBinds, searches, pages, entries, abandons, sizeLimit atomic.Int64
	modifies, pwChanges, pwRefusals                                   atomic.Int64
	dirSyncs                                                          atomic.Int64
	// dirSyncDenied withholds "Replicating Directory Changes" from the
	// bind account (see DenyDirSync).
	dirSyncDenied atomic.Bool
	// deletedHidden hides CN=Deleted Objects from the bind account (see
	// HideDeletedObjects).
	deletedHidden atomic.Bool

	mu       sync.Mutex
	bound    map[int]bool
	paging   map[string]*pageState
	conns    map[net.Conn]struct{}
	failNext []int // result codes the next searches fail with
	// secure marks connections upgraded with StartTLS; who is the DN each
	// connection is bound as.
	secure   map[int]bool
	who      map[int]string
	pwFaults []PasswordFault
	latency  time.Duration
	closed   bool
	wg       sync.WaitGroup
	// proxied is closed when the proxy stops accepting: from then on no
	// connection to gldap is being dialed.
	proxied chan struct{}
	// probed is closed when gldap has let go of the first connection, the
	// probe that tells Start it listens (see Start).
	probed    chan struct{}
	probeOnce sync.Once
	runErr    chan error
}

// pageState is a paged search in progress. Cookies are not bound to a
// connection, so a client may resume after reconnecting.
type pageState struct {
	match matcher
	cands []*Entry
	next  int
	attrs []string
	view  view
}

// Start serves opts.Directory on a random 127.0.0.1 port.
func Start(opts Options) (*Server, error) {
	if opts.Directory == nil {
		opts.Directory = Generate(1, 0)
	}
	if opts.BindDN == "" {
		opts.BindDN = DefaultBindDN
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = DefaultMaxPageSize
	}
	if opts.MaxValRange <= 0 {
		opts.MaxValRange = DefaultMaxValRange
	}
	s := &Server{dir: opts.Directory, opts: opts, bound: map[int]bool{}, paging: map[string]*pageState{},
		conns: map[net.Conn]struct{}{}, latency: opts.Latency, runErr: make(chan error, 1),
		secure: map[int]bool{}, who: map[int]string{}, probed: make(chan struct{})}
	var err error
	if s.tlsCfg, s.caPEM, err = selfSigned(); err != nil {
		return nil, err
	}
	srv, err := gldap.NewServer(gldap.WithLogger(hclog.NewNullLogger()), gldap.WithOnClose(s.onClose))
	if err != nil {
		return nil, err
	}
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	for _, reg := range []error{
		mux.Bind(s.handleBind),
		mux.Search(s.handleSearch),
		mux.Modify(s.handleModify),
		mux.ExtendedOperation(s.handleStartTLS, gldap.ExtendedOperationStartTLS),
		mux.DefaultRoute(s.handleUnsupported),
		srv.Router(mux),
	} {
		if reg != nil {
			return nil, reg
		}
	}
	s.ldap = srv

	// gldap listens on its own port; the public listener in front of it
	// lets DropConnections cut clients off.
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.backend = back.Addr().String()
	back.Close()
	var runOpts []gldap.Option
	if opts.LDAPS {
		runOpts = append(runOpts, gldap.WithTLSConfig(s.tlsCfg))
	}
	go func() { s.runErr <- srv.Run(s.backend, runOpts...) }()
	if err := waitDial(s.backend, s.runErr); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("adtest: start LDAP server: %w", err)
	}
	// gldap counts the probe connection in a WaitGroup its Stop waits on:
	// a Close right after Start would race with it being accepted.
	select {
	case <-s.probed:
	case <-time.After(5 * time.Second):
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if s.listener, err = net.Listen("tcp", addr); err != nil {
		srv.Stop()
		return nil, err
	}
	s.wg.Add(1)
	s.proxied = make(chan struct{})
	go s.proxy()
	return s, nil
}

// NewServer starts a server for a test or benchmark and stops it when tb
// ends.
func NewServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("adtest: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func waitDial(addr string, runErr chan error) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("server stopped")
			}
			return err
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no listener on %s", addr)
}

func (s *Server) proxy() {
	defer s.wg.Done()
	defer close(s.proxied)
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", s.backend)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			b.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.conns[b] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer s.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			s.mu.Lock()
			delete(s.conns, dst)
			delete(s.conns, src)
			s.mu.Unlock()
		}
		go pipe(b, c)
		go pipe(c, b)
	}
}

// Close stops the server and drops every connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.listener.Close()
	// gldap's Stop must not meet a connection it is still accepting (its
	// WaitGroup would be added to while waited on): let the proxy's last
	// dial finish first.
	<-s.proxied
	s.DropConnections()
	err := s.ldap.Stop()
	s.wg.Wait()
	return err
}

// DropConnections cuts every open client connection, as a DC restart or an
// idle-timeout firewall would. New connections are accepted as before.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// OpenConnections is how many client connections are open.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) / 2 // each is the client's and the backend's
}

// URL is ldap://127.0.0.1:port or ldaps://127.0.0.1:port.
func (s *Server) URL() string {
	scheme := "ldap"
	if s.opts.LDAPS {
		scheme = "ldaps"
	}
	return scheme + "://" + s.listener.Addr().String()
}

// Addr is the host:port clients connect to.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// CAPEM is the PEM certificate clients must trust for LDAPS or StartTLS
// (it is self-signed, with SANs localhost and 127.0.0.1).
func (s *Server) CAPEM() []byte { return s.caPEM }

// Config returns an ad.Config that reads this server for customer, trusting
// its certificate (ldaps, or StartTLS on a plain server).
func (s *Server) Config(customer string) ad.Config {
	cfg := ad.Config{Customer: customer, URL: s.URL(), CAPEM: s.CAPEM(), BindDN: s.opts.BindDN, BindPassword: s.opts.Password}
	if !s.opts.LDAPS {
		cfg.StartTLS = true
	}
	return cfg
}

// BindDN is the accepted bind DN.
func (s *Server) BindDN() string { return s.opts.BindDN }

// Password is the accepted bind password.
func (s *Server) Password() string { return s.opts.Password }

// Directory is the served directory; seed it while the server runs.
func (s *Server) Directory() *Directory { return s.dir }

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{Binds: s.binds.Load(), FailedBinds: s.failedBinds.Load(), Searches: s.searches.Load(), Pages: s.pages.Load(),
		Entries: s.entries.Load(), Abandons: s.abandons.Load(), SizeLimitExceeded: s.sizeLimit.Load(),
		Modifies: s.modifies.Load(), PasswordChanges: s.pwChanges.Load(), PasswordRefusals: s.pwRefusals.Load(), DirSyncs: s.dirSyncs.Load()}
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	for _, c := range []*atomic.Int64{&s.binds, &s.failedBinds, &s.searches, &s.pages, &s.entries, &s.abandons, &s.sizeLimit,
		&s.modifies, &s.pwChanges, &s.pwRefusals, &s.dirSyncs} {
		c.Store(0)
	}
}

// FailSearches makes the next len(codes) search requests fail with these
// LDAP result codes (e.g. 51 busy, 1 operationsError).
func (s *Server) FailSearches(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, codes...)
}

// SetLatency changes the delay added to every search request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// OpenPagedSearches is the number of paged searches whose state the server
// still holds (not finished and not abandoned).
func (s *Server) OpenPagedSearches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.paging)
}

func (s *Server) onClose(connID int) {
	s.probeOnce.Do(func() { close(s.probed) })
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bound, connID)
	delete(s.secure, connID)
	delete(s.who, connID)
}

// badCredentials is AD's diagnostic for a wrong password.
const badCredentials = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563\x00"

// bindNames are the spellings of the bind account a DC accepts.
func (s *Server) bindNames() []string {
	names := []string{s.opts.BindDN}
	first, _, _ := strings.Cut(s.opts.BindDN, ",")
	if _, cn, ok := strings.Cut(first, "="); ok {
		names = append(names, cn+"@"+s.dir.DNSName, s.dir.NetBIOS+`\`+cn)
	}
	return names
}

func (s *Server) handleBind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	defer func() { _ = w.Write(resp) }()
	m, err := r.GetSimpleBindMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultAuthMethodNotSupported)
		resp.SetDiagnosticMessage("only simple bind is supported")
		return
	}
	s.binds.Add(1)
	if m.UserName == "" && m.Password == "" {
		resp.SetResultCode(gldap.ResultSuccess) // anonymous: may read the rootDSE only
		s.setBound(r.ConnectionID(), false)
		s.setWho(r.ConnectionID(), "")
		return
	}
	ok := false
	for _, n := range s.bindNames() {
		if strings.EqualFold(n, m.UserName) {
			ok = true
		}
	}
	who := s.opts.BindDN
	if !ok {
		// A user of the directory with a password (see SetUserPassword).
		var diag string
		who, diag = s.dir.userBind(m.UserName, string(m.Password))
		if who == "" {
			s.failedBinds.Add(1)
			s.setBound(r.ConnectionID(), false)
			s.setWho(r.ConnectionID(), "")
			resp.SetDiagnosticMessage(diag)
			return
		}
	} else if string(m.Password) != s.opts.Password {
		s.failedBinds.Add(1)
		s.setBound(r.ConnectionID(), false)
		s.setWho(r.ConnectionID(), "")
		resp.SetDiagnosticMessage(badCredentials)
		return
	}
	s.setBound(r.ConnectionID(), true)
	s.setWho(r.ConnectionID(), who)
	resp.SetResultCode(gldap.ResultSuccess)
}

func (s *Server) setBound(id int, b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bound[id] = b
}

func (s *Server) handleStartTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	if s.opts.LDAPS {
		resp.SetResultCode(gldap.ResultOperationsError)
		resp.SetDiagnosticMessage("TLS already active")
		_ = w.Write(resp)
		return
	}
	if err := w.Write(resp); err != nil {
		return
	}
	if r.StartTLS(s.tlsCfg) == nil {
		s.mu.Lock()
		s.secure[r.ConnectionID()] = true
		s.mu.Unlock()
	}
}

func (s *Server) handleUnsupported(w *gldap.ResponseWriter, r *gldap.Request) {
	_ = w.Write(r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform), gldap.WithDiagnosticMessage("not supported by adtest")))
}

func (s *Server) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	s.searches.Add(1)
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	m, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		_ = w.Write(done)
		return
	}
	s.mu.Lock()
	bound := s.bound[r.ConnectionID()]
	latency := s.latency
	fail := 0
	if len(s.failNext) > 0 {
		fail, s.failNext = s.failNext[0], s.failNext[1:]
	}
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
	if fail != 0 {
		done.SetResultCode(fail)
		done.SetDiagnosticMessage("injected failure")
		_ = w.Write(done)
		return
	}
	if m.BaseDN == "" && m.Scope == gldap.BaseObject {
		s.rootDSE(w, r, m)
		return
	}
	if !bound {
		done.SetResultCode(gldap.ResultOperationsError)
		done.SetDiagnosticMessage("000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563\x00")
		_ = w.Write(done)
		return
	}
	if ctl := findControl(m.Controls, controlDirSync); ctl != nil {
		s.dirSync(w, r, m, ctl)
		return
	}
	if e := s.dcEntry(m); e != nil {
		s.entries.Add(1)
		_ = w.Write(r.NewSearchResponseEntry(e.DN, gldap.WithAttributes(selectAttrs(e, m.Attributes))))
		_ = w.Write(done)
		return
	}
	var paging *gldap.ControlPaging
	for _, c := range m.Controls {
		if pc, ok := c.(*gldap.ControlPaging); ok {
			paging = pc
		}
	}
	var st *pageState
	if paging != nil && len(paging.Cookie) > 0 {
		s.mu.Lock()
		st = s.paging[string(paging.Cookie)]
		delete(s.paging, string(paging.Cookie))
		s.mu.Unlock()
		if st == nil {
			done.SetResultCode(gldap.ResultUnwillingToPerform)
			done.SetDiagnosticMessage("00002040: SvcErr: DSID-03100DE7, problem 5008 (WILL_NOT_PERFORM), unknown or expired paging cookie\x00")
			_ = w.Write(done)
			return
		}
		if paging.PagingSize == 0 { // abandon
			s.abandons.Add(1)
			_ = w.Write(done)
			return
		}
	} else {
		st, err = s.newSearch(m)
		if err != nil {
			var le *ldapErr
			if errors.As(err, &le) {
				done.SetResultCode(le.code)
				done.SetMatchedDN(le.matched)
			} else {
				done.SetResultCode(gldap.ResultProtocolError)
			}
			done.SetDiagnosticMessage(err.Error())
			_ = w.Write(done)
			return
		}
	}
	s.pages.Add(1)

	limit := s.opts.MaxPageSize
	if paging != nil && paging.PagingSize > 0 && int(paging.PagingSize) < limit {
		limit = int(paging.PagingSize)
	}
	if paging == nil && m.SizeLimit > 0 && int(m.SizeLimit) < limit {
		limit = int(m.SizeLimit)
	}
	sent := 0
	more := false
	s.dir.mu.RLock()
	for st.next < len(st.cands) {
		e := st.cands[st.next]
		if !st.match(e) {
			st.next++
			continue
		}
		if sent == limit {
			more = true
			break
		}
		resp := r.NewSearchResponseEntry(st.dn(e), gldap.WithAttributes(s.searchAttrs(e, st)))
		st.next++
		sent++
		if err := w.Write(resp); err != nil {
			s.dir.mu.RUnlock()
			return
		}
	}
	s.dir.mu.RUnlock()
	s.entries.Add(int64(sent))

	if paging == nil {
		if more {
			s.sizeLimit.Add(1)
			done.SetResultCode(gldap.ResultSizeLimitExceeded)
			done.SetDiagnosticMessage("size limit exceeded")
		}
		_ = w.Write(done)
		return
	}
	ctl, _ := gldap.NewControlPaging(0)
	if more {
		cookie := make([]byte, 12)
		_, _ = rand.Read(cookie)
		ctl.SetCookie([]byte(hex.EncodeToString(cookie)))
		s.mu.Lock()
		s.paging[string(ctl.Cookie)] = st
		s.mu.Unlock()
	}
	done.SetControls(ctl)
	_ = w.Write(done)
}

// ldapErr is a search failure with an LDAP result code.
type ldapErr struct {
	code    int
	matched string
	msg     string
}

func (e *ldapErr) Error() string { return e.msg }

func (s *Server) newSearch(m *gldap.SearchMessage) (*pageState, error) {
	s.dir.mu.RLock()
	defer s.dir.mu.RUnlock()
	view := searchView(m.Controls)
	base := s.dir.resolveBase(m.BaseDN)
	if s.deletedHidden.Load() && (base == strings.ToLower(s.dir.deletedObjects()) || strings.HasSuffix(base, ","+strings.ToLower(s.dir.deletedObjects()))) {
		view.showDeleted = false // the container and what it holds are not readable
	}
	if be, ok := s.dir.byDN[base]; !ok || (be.deleted && !view.showDeleted) {
		return nil, &ldapErr{code: gldap.ResultNoSuchObject, matched: s.dir.BaseDN,
			msg: "0000208D: NameErr: DSID-03100288, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'" + s.dir.BaseDN + "'\n\x00"}
	}
	match, err := s.dir.compileFilter(m.Filter)
	if err != nil {
		return nil, err
	}
	var cands []*Entry
	if m.Scope == gldap.BaseObject {
		cands = append(cands, s.dir.byDN[base])
		return &pageState{match: match, cands: cands, attrs: m.Attributes, view: view}, nil
	}
	for _, e := range s.dir.entries {
		if e.deleted && !view.showDeleted {
			continue
		}
		switch m.Scope {
		case gldap.BaseObject:
			if e.key != base {
				continue
			}
		case gldap.SingleLevel:
			_, parent, _ := strings.Cut(e.key, ",")
			if parent != base {
				continue
			}
		default:
			if e.key != base && !strings.HasSuffix(e.key, ","+base) {
				continue
			}
		}
		cands = append(cands, e)
	}
	return &pageState{match: match, cands: cands, attrs: m.Attributes, view: view}, nil
}

// selectAttrs returns the requested attributes (all when none or "*").
func selectAttrs(e *Entry, want []string) map[string][]string {
	out := map[string][]string{}
	all := len(want) == 0
	for _, w := range want {
		if w == "*" {
			all = true
		}
	}
	if all {
		for _, k := range e.order {
			a := e.attrs[k]
			out[a.Name] = a.Values
		}
		return out
	}
	for _, w := range want {
		if a, ok := e.attrs[strings.ToLower(w)]; ok {
			out[a.Name] = a.Values
		}
	}
	return out
}

func (s *Server) rootDSE(w *gldap.ResponseWriter, r *gldap.Request, m *gldap.SearchMessage) {
	d := s.dir
	attrs := map[string][]string{
		"defaultNamingContext":       {d.BaseDN},
		"rootDomainNamingContext":    {d.BaseDN},
		"configurationNamingContext": {"CN=Configuration," + d.BaseDN},
		"supportedControl":           supportedControls,
		"supportedLDAPVersion":       {"3"},
		"supportedExtension":         {"1.3.6.1.4.1.1466.20037"},
	}
	e := &Entry{attrs: map[string]*Attribute{}}
	for k, v := range attrs {
		e.set(k, v...)
	}
	d.mu.RLock()
	d.dcRootDSE(e)
	d.mu.RUnlock()
	// tokenGroups, the connection's security context, only when asked for.
	for _, a := range m.Attributes {
		if strings.EqualFold(a, "tokenGroups") {
			e.set("tokenGroups", s.tokenGroups(r.ConnectionID())...)
		}
	}
	s.entries.Add(1)
	_ = w.Write(r.NewSearchResponseEntry("", gldap.WithAttributes(selectAttrs(e, m.Attributes))))
	_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
}

// selfSigned makes a throwaway certificate for localhost and 127.0.0.1.
func selfSigned() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "adtest DC", Organization: []string{"adtest"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certPEM, nil
}
