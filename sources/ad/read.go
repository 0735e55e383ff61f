package ad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/msp-tools/autoimport/sources"
)

// Incremental reads.
//
// Read keeps a local copy of the domain (users, contacts, groups, the
// containers they live in, and the direct member links of the groups) in a
// sources.CopyStore, and brings it up to date with what changed since the
// last read: with DirSync where the bind account holds "Replicating
// Directory Changes" (a Domain Admin does), else by polling uSNChanged on
// the same DC. CopyAccounts then computes from the copy exactly what
// Accounts reads from the DC.
//
// A read is full (reconciling: what it does not see is gone) when there
// is no copy, when it is asked for, when the selection or the domain
// settings changed, when the last full read is older than
// ReadOptions.FullEvery, when the DC refuses the cookie or answers with
// another invocationId (another DC, or one restored from a backup), and
// after an incremental read met entries it could not decode. The changes
// and the new position are applied in one ApplyCopy: a crash before it
// re-reads from the old position, and no change is skipped.

// copySource is the copy's source name in the CopyStore.
const copySource = string(sources.KindAD)

// DefaultFullEvery is the longest time between two full reads when
// ReadOptions.FullEvery is zero.
const DefaultFullEvery = 7 * 24 * time.Hour

// The read modes a position records.
const (
	modeDirSync = "dirsync"
	modeUSN     = "usn"
)

// syncToken is the reader's position, stored as the copy's SyncState.Token.
type syncToken struct {
	Version int    `json:"v"`
	Mode    string `json:"mode"`
	// Cookie is DirSync's cookie; USN the DC's highestCommittedUSN read
	// before the last uSNChanged search.
	Cookie []byte `json:"cookie,omitempty"`
	USN    int64  `json:"usn,omitempty"`
	// DC is the dnsHostName that answered, Service its dsServiceName and
	// InvocationID its invocationId: the position is good on that DC only.
	DC           string `json:"dc,omitempty"`
	Service      string `json:"service,omitempty"`
	InvocationID string `json:"invocationId,omitempty"`
	// Domain is what the last full read discovered of the domain.
	Domain tokenDomain `json:"domain"`
	// Problems says the last incremental read met entries it could not
	// take in: the next read is full.
	Problems bool `json:"problems,omitempty"`
	// DeletedHidden says the bind account cannot read CN=Deleted
	// Objects: uSNChanged polling then finds deletions by listing the
	// objects' GUIDs.
	DeletedHidden bool `json:"deletedHidden,omitempty"`
}

type tokenDomain struct {
	BaseDN  string `json:"baseDN"`
	RootDN  string `json:"rootDN"`
	NetBIOS string `json:"netbios"`
	SID     string `json:"sid"`
	RootSID string `json:"rootSID"`
	Host    string `json:"host"`
}

const tokenVersion = 1

func domainOf(info Info) tokenDomain {
	return tokenDomain{BaseDN: info.BaseDN, RootDN: info.RootDN, NetBIOS: info.NetBIOS, SID: info.SID.String(), RootSID: info.RootSID.String(), Host: info.DNSHostName}
}

func (t tokenDomain) info() (Info, error) {
	sid, err := ParseSID(t.SID)
	if err != nil {
		return Info{}, err
	}
	root, err := ParseSID(t.RootSID)
	if err != nil {
		return Info{}, err
	}
	return Info{BaseDN: t.BaseDN, RootDN: t.RootDN, NetBIOS: t.NetBIOS, SID: sid, RootSID: root, DNSHostName: t.Host}, nil
}

func decodeToken(b []byte) (syncToken, error) {
	var t syncToken
	if err := json.Unmarshal(b, &t); err != nil {
		return syncToken{}, err
	}
	if t.Version != tokenVersion || (t.Mode != modeDirSync && t.Mode != modeUSN) {
		return syncToken{}, fmt.Errorf("position of version %d, mode %q", t.Version, t.Mode)
	}
	if _, err := t.Domain.info(); err != nil {
		return syncToken{}, err
	}
	return t, nil
}

// selectionDigest identifies what a copy was read for: the selection and
// the settings that decide what the domain is.
func (s *Source) selectionDigest(sel sources.Selection) string {
	b, _ := json.Marshal(struct {
		Sel            sources.Selection
		BaseDN, Domain string
	}{sel, s.cfg.BaseDN, s.cfg.Domain})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Read brings the customer's local copy of the domain up to date, fully
// or incrementally (see above), and reports which and why. The copy is
// changed in one ApplyCopy, with the new position, or not at all.
func (s *Source) Read(ctx context.Context, copies sources.CopyStore, customer string, sel sources.Selection, opt sources.ReadOptions) (sources.ReadReport, error) {
	rep := sources.ReadReport{Source: sources.KindAD}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	start := now()
	state, err := copies.CopyState(ctx, customer, copySource)
	if err != nil {
		return rep, s.errorf(err, "read the local copy's position")
	}
	digest := s.selectionDigest(sel)
	tok, reason := s.fullReason(state, digest, opt, start)
	turn := opt.FullTurn()
	defer turn.Release()
	if reason != "" { // its turn first, not to hold a connection while it waits
		if err := turn.Take(ctx); err != nil {
			return rep, s.errorf(err, "read the domain in full")
		}
	}
	ss, err := s.open(ctx)
	if err != nil {
		return rep, err
	}
	defer ss.close()

	var delta sources.CopyDelta
	var next syncToken
	if reason == "" {
		delta, next, reason, err = ss.readIncremental(ctx, copies, customer, tok)
		if err != nil {
			rep.Requests = ss.requests
			return rep, err
		}
	}
	full := reason != ""
	if full {
		if err := turn.Take(ctx); err != nil {
			return rep, s.errorf(err, "read the domain in full")
		}
		delta, next, err = ss.readFull(ctx, copies, customer)
		if err != nil {
			rep.Requests = ss.requests
			return rep, err
		}
	}
	token, err := json.Marshal(next)
	if err != nil {
		return rep, s.errorf(err, "encode the read position")
	}
	delta.State = sources.SyncState{Token: token, FullAt: state.FullAt, Selection: digest}
	if full {
		delta.State.FullAt = now()
	}
	if err := copies.ApplyCopy(ctx, customer, copySource, delta); err != nil {
		rep.Requests = ss.requests
		return rep, s.errorf(err, "save the local copy of the directory")
	}
	rep.Mode, rep.Reason, rep.Requests, rep.Changes, rep.Waited = sources.ReadIncremental, reason, ss.requests, delta.Changes(), turn.Waited()
	if full {
		rep.Mode = sources.ReadFull
	}
	return rep, nil
}

// fullReason says why the next read must be full ("" when it may be
// incremental) and returns the stored position.
func (s *Source) fullReason(state sources.SyncState, digest string, opt sources.ReadOptions, now time.Time) (syncToken, string) {
	every := opt.FullEvery
	if every <= 0 {
		every = DefaultFullEvery
	}
	if opt.Full {
		return syncToken{}, "asked for"
	}
	if state.Zero() {
		return syncToken{}, "no state"
	}
	tok, err := decodeToken(state.Token)
	switch {
	case err != nil:
		return syncToken{}, fmt.Sprintf("the stored position is unreadable (%v)", err)
	case state.Selection != digest:
		return tok, "the selection changed"
	case now.Sub(state.FullAt) > every:
		return tok, "the last full read is older than " + durationText(every)
	case tok.Problems:
		return tok, "the last read met entries it could not decode"
	}
	return tok, ""
}

// durationText says "7 days" rather than "168h0m0s".
func durationText(d time.Duration) string {
	switch n := d / (24 * time.Hour); {
	case d%(24*time.Hour) != 0:
		return d.String()
	case n == 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", n)
	}
}

// readFull reads the whole domain: with DirSync, or by searching when the
// bind account may not use DirSync. Where the copies can stage (a
// sources.CopyStager), the accounts go to the store as they are read and
// the delta names how many; otherwise the delta holds the whole domain.
func (ss *session) readFull(ctx context.Context, copies sources.CopyStore, customer string) (sources.CopyDelta, syncToken, error) {
	info, err := ss.discover(ctx)
	if err != nil {
		return sources.CopyDelta{}, syncToken{}, err
	}
	tok := syncToken{Version: tokenVersion, Domain: domainOf(info), DC: info.DNSHostName}
	cs, err := ss.newFullChangeSet(ctx, copies, customer)
	if err != nil {
		return sources.CopyDelta{}, syncToken{}, err
	}
	defer func() { cs.stopStaging() }() // the change set last begun
	cookie, err := ss.dirSyncAll(ctx, info.BaseDN, nil, cs, nil)
	switch {
	case err == nil:
		tok.Mode, tok.Cookie = modeDirSync, cookie
		tok.InvocationID, _ = cookieInvocation(cookie)
		if tok.InvocationID == "" {
			// A cookie of unknown layout: pin the DC by asking it.
			dc, err := ss.dcState(ctx)
			if err != nil {
				return sources.CopyDelta{}, syncToken{}, err
			}
			tok.Service, tok.InvocationID = dc.service, dc.invocation
		}
	case isInsufficientRights(err):
		cs.stopStaging()
		if cs, err = ss.newFullChangeSet(ctx, copies, customer); err != nil {
			return sources.CopyDelta{}, syncToken{}, err
		}
		dc, err := ss.dcState(ctx)
		if err != nil {
			return sources.CopyDelta{}, syncToken{}, err
		}
		if err := ss.searchChanged(ctx, info.BaseDN, 0, cs); err != nil {
			return sources.CopyDelta{}, syncToken{}, err
		}
		hidden, err := ss.deletedHidden(ctx, info.BaseDN)
		if err != nil {
			return sources.CopyDelta{}, syncToken{}, err
		}
		tok.Mode, tok.USN, tok.Service, tok.InvocationID, tok.DC, tok.DeletedHidden = modeUSN, dc.usn, dc.service, dc.invocation, dc.host, hidden
	default:
		return sources.CopyDelta{}, syncToken{}, err
	}
	d, err := cs.fullDelta()
	if err != nil {
		return sources.CopyDelta{}, syncToken{}, ss.src.errorf(err, "read the directory in full")
	}
	return d, tok, nil
}

// newFullChangeSet starts a full read's changes, staging its accounts
// where copies can: what an earlier full read staged and never applied is
// dropped first.
func (ss *session) newFullChangeSet(ctx context.Context, copies sources.CopyStore, customer string) (*changeSet, error) {
	stage, err := sources.StagingFor(ctx, copies, customer, copySource)
	if err != nil {
		return nil, ss.src.errorf(err, "read the directory in full")
	}
	cs := newChangeSet(true)
	cs.stage = stage
	return cs, nil
}

// isInsufficientRights reports LDAP result 50 anywhere in err's chain.
func isInsufficientRights(err error) bool {
	le, ok := serverRefusal(err)
	return ok && le.ResultCode == ldap.LDAPResultInsufficientAccessRights
}

// serverRefusal finds the DC's answer in err: an LDAP result, not a
// client-side failure (go-ldap numbers those from 200: network, timeout).
func serverRefusal(err error) (*ldap.Error, bool) {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork {
		return nil, false
	}
	return le, true
}

// readIncremental reads what changed since tok. A non-empty reason means
// the position is no good and a full read must follow.
func (ss *session) readIncremental(ctx context.Context, copies sources.CopyStore, customer string, tok syncToken) (sources.CopyDelta, syncToken, string, error) {
	read := ss.usnChanges
	if tok.Mode == modeDirSync {
		read = func(ctx context.Context, _ sources.CopyStore, _ string, tok syncToken) (*changeSet, syncToken, string, error) {
			return ss.dirSyncChanges(ctx, tok)
		}
	}
	cs, next, reason, err := read(ctx, copies, customer, tok)
	if err != nil || reason != "" {
		return sources.CopyDelta{}, syncToken{}, reason, err
	}
	delta, err := cs.incrementalDelta(ctx, copies, customer, ss.reread)
	if err != nil {
		return sources.CopyDelta{}, syncToken{}, "", ss.src.errorf(err, "apply the changes")
	}
	next.Problems = len(cs.problems) > 0
	return delta, next, "", nil
}

// dirSyncChanges reads the changes since tok's cookie.
func (ss *session) dirSyncChanges(ctx context.Context, tok syncToken) (*changeSet, syncToken, string, error) {
	next := tok
	if tok.Service != "" {
		// The cookie does not say which DC made it: ask the DC.
		dc, err := ss.dcState(ctx)
		if err != nil {
			return nil, next, "", err
		}
		if reason := dcChanged(tok, dc); reason != "" {
			return nil, next, reason, nil
		}
	}
	cs := newChangeSet(false)
	reason := ""
	checkDC := func(cookie []byte) bool {
		if inv, ok := cookieInvocation(cookie); ok && tok.Service == "" && inv != tok.InvocationID {
			reason = fmt.Sprintf("another DC answered, or the DC was restored (invocationId %s, was %s)", inv, tok.InvocationID)
			return false
		}
		return true
	}
	cookie, err := ss.dirSyncAll(ctx, tok.Domain.BaseDN, tok.Cookie, cs, checkDC)
	if err != nil {
		if le, ok := serverRefusal(err); ok && ctx.Err() == nil {
			return nil, next, fmt.Sprintf("the DC refused the DirSync cookie (LDAP result %d %s)", le.ResultCode, ldap.LDAPResultCodeMap[le.ResultCode]), nil
		}
		return nil, next, "", err
	}
	if reason != "" {
		return nil, next, reason, nil
	}
	next.Cookie = cookie
	return cs, next, "", nil
}

// reread reads one object whole, by its GUID: gone when the DC no longer
// has it, nil when it cannot be asked for (no GUID).
func (ss *session) reread(ctx context.Context, id string) (*dirEntry, bool, error) {
	if _, err := GUIDBytes(id); err != nil {
		return nil, false, nil
	}
	var found *dirEntry
	err := ss.search(ctx, searchSpec{what: "a restored object", base: "<GUID=" + id + ">", scope: ldap.ScopeBaseObject, filter: copyFilter,
		attrs: searchAttrs, controls: []ldap.Control{ldap.NewControlString(controlExtendedDN, true, "")}}, func(e *ldap.Entry) bool {
		if d, eerr := decodeEntry(e, false); eerr == nil && d.id == id {
			found = &d
		}
		return false
	})
	if le, ok := serverRefusal(err); ok && le.ResultCode == ldap.LDAPResultNoSuchObject {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if found == nil {
		return nil, true, nil
	}
	if found.members != nil && found.members.next > 0 {
		if err := ss.moreMembers(ctx, found); err != nil {
			return nil, false, err
		}
	}
	return found, false, nil
}

// dirSyncAttrs are the attributes DirSync asks for.
var dirSyncAttrs = append(append([]string{}, copyAttrs...), "member", "isDeleted", "name")

// dirSyncAll runs DirSync from cookie until the DC says nothing more
// follows, taking every entry into cs, and returns the last cookie. check,
// when given, vets each answer's cookie; false stops the read, and cs,
// which holds what that answer carried, is then not to be used.
//
// Each entry is decoded and taken in as it arrives, while the DC is still
// sending the rest of its answer: the LDAP library's form of it (every
// value held twice) is dropped at once, and a full read stages its
// accounts in the store while the next ones are on their way. An answer
// that must be asked for again (a dropped connection) repeats entries cs
// has taken, which it takes as any object DirSync sends twice.
func (ss *session) dirSyncAll(ctx context.Context, base string, cookie []byte, cs *changeSet, check func([]byte) bool) ([]byte, error) {
	for batch := 1; ; batch++ {
		next, more, err := ss.dirSyncBatch(ctx, base, cookie, func(e *ldap.Entry) {
			d, eerr := decodeEntry(e, true)
			if eerr != nil {
				cs.problems = append(cs.problems, problem{entry: eerr.Entry, reason: eerr.Reason})
				return
			}
			cs.add(d, false)
		})
		if err != nil {
			return nil, ss.src.errorf(explainSearch(err), "DirSync under %q batch %d", base, batch)
		}
		if check != nil && !check(next) {
			return nil, nil
		}
		cookie = next
		if !more {
			return cookie, nil
		}
	}
}

// dirSyncBatch sends one DirSync request (with incremental values and the
// Extended DN control) and hands each entry to fn. It reconnects once when
// the connection drops, asking again with the same cookie.
func (ss *session) dirSyncBatch(ctx context.Context, base string, cookie []byte, fn func(*ldap.Entry)) ([]byte, bool, error) {
	next, more, err := ss.dirSyncOnce(ctx, base, cookie, fn)
	if ss.reconnectAfter(ctx, err) {
		next, more, err = ss.dirSyncOnce(ctx, base, cookie, fn)
	}
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return next, more, err
}

func (ss *session) dirSyncOnce(ctx context.Context, base string, cookie []byte, fn func(*ldap.Entry)) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, ss.src.cfg.SearchTimeout)
	defer cancel()
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(ss.src.cfg.SearchTimeout/time.Second), false,
		copyFilter, dirSyncAttrs, []ldap.Control{ldap.NewControlString(controlExtendedDN, true, "")})
	ss.requests++
	resp := ss.conn.DirSyncAsync(ctx, req, 64, ldap.DirSyncIncrementalValues, 0, cookie)
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			fn(e)
		}
	}
	if err := resp.Err(); err != nil {
		if isTimeout(err) {
			return nil, false, fmt.Errorf("no answer within %s (raise search_timeout, or check the DC's load): %w", ss.src.cfg.SearchTimeout, err)
		}
		return nil, false, err
	}
	c, ok := ldap.FindControl(resp.Controls(), ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
	if !ok {
		return nil, false, errors.New("the DC answered DirSync without its control")
	}
	return c.Cookie, c.Flags != 0, nil
}
