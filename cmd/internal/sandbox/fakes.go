package sandbox

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/msp-tools/autoimport/sinks/autotask/autotasktest"
	"github.com/msp-tools/autoimport/sinks/connectwise/cwtest"
	"github.com/msp-tools/autoimport/sinks/email/emailtest"
	"github.com/msp-tools/autoimport/sinks/halopsa/halopsatest"
	"github.com/msp-tools/autoimport/sinks/hudu/hudutest"
	"github.com/msp-tools/autoimport/sinks/itglue/itgluetest"
	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// The integrations as Requests names them.
const (
	ActiveDirectory = "Active Directory"
	Graph           = "Microsoft Graph"
	ITGlue          = "IT Glue"
	Hudu            = "Hudu"
	HaloPSA         = "HaloPSA"
	ConnectWise     = "ConnectWise PSA"
	Autotask        = "Autotask"
	SMTP            = "SMTP"
)

// The classes of request kinds.
const (
	ClassList   = "list"   // reads an index or a directory page
	ClassCreate = "create" // writes something
	ClassOther  = "other"  // tokens, lookups, zone discovery, binds
)

// rateWindow is the window over which the HTTP fakes count requests
// against Options.RateLimit. A window of several seconds with a small
// allowance on top tolerates the limiter's burst and arrival jitter while
// still refusing a client that ignores the limit.
const rateWindow = 10 * time.Second

func (o Options) windowLimit() int {
	return int(math.Ceil(o.RateLimit*rateWindow.Seconds()*1.02)) + 10
}

func (e *Env) startFakes() error {
	o := e.opts
	var err error
	if e.Graph, err = m365test.Start(m365test.Options{Latency: o.Latency, ResourceUnitsPer10s: 5 * o.windowLimit()}); err != nil {
		return err
	}
	e.closers = append(e.closers, e.Graph.Close)
	if e.ITGlue, err = itgluetest.Start(itgluetest.Options{Latency: o.Latency, RateLimit: o.windowLimit(), RateWindow: rateWindow}); err != nil {
		return err
	}
	e.closers = append(e.closers, e.ITGlue.Close)
	if e.Hudu, err = hudutest.Start(hudutest.Options{Latency: o.Latency, RateLimit: o.windowLimit(), RateWindow: rateWindow, RetryAfter: true}); err != nil {
		return err
	}
	e.closers = append(e.closers, e.Hudu.Close)
	e.HaloPSA = halopsatest.NewServer(halopsatest.Options{Latency: o.Latency})
	e.closers = append(e.closers, e.HaloPSA.Close)
	e.ConnectWise = cwtest.NewServer(cwtest.Options{Latency: o.Latency})
	e.closers = append(e.closers, e.ConnectWise.Close)
	e.Autotask = autotasktest.NewServer(autotasktest.Options{Latency: o.Latency, HourlyLimit: o.windowLimit(), Window: rateWindow,
		SlowHalf: -1, SlowThreeQuarters: -1})
	e.closers = append(e.closers, e.Autotask.Close)
	if e.SMTP, err = emailtest.Start(emailtest.Options{Mode: emailtest.Plain, Dir: e.MailDir, Latency: o.Latency}); err != nil {
		return err
	}
	e.closers = append(e.closers, func() { e.SMTP.Close() })
	return nil
}

// startAD starts one customer's domain controller over LDAPS.
func (e *Env) startAD(id string, dir *adtest.Directory) (*adtest.Server, error) {
	s, err := adtest.Start(adtest.Options{Directory: dir, LDAPS: true, Latency: e.opts.Latency})
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { s.Close() })
	e.AD[id] = s
	return s, nil
}

// injectFaults spreads FaultRate's 429 answers over the requests a first
// run is expected to make at each HTTP fake.
func (e *Env) injectFaults() {
	if e.opts.FaultRate <= 0 {
		return
	}
	gap := max(1, int(math.Round(1/e.opts.FaultRate)))
	// A first run makes about two requests per account at each sink;
	// faults beyond that simply stay pending.
	expected := 2*e.opts.Accounts*len(e.customers) + 10*len(e.customers)
	for after := gap / 2; after < expected; after += gap {
		e.ITGlue.Inject(itgluetest.Fault{After: after, Status: 429, RetryAfter: "1"})
		e.Hudu.Inject(hudutest.Fault{After: after, Status: 429, RetryAfter: "1"})
		e.HaloPSA.Inject(halopsatest.Fault{After: after, Status: 429, RetryAfter: "1"})
		e.ConnectWise.Inject(cwtest.Fault{After: after, Status: 429, RetryAfter: "1"})
		e.Autotask.Inject(autotasktest.Fault{After: after, Status: 429, RetryAfter: "1"})
		e.Graph.Inject(m365test.Fault{After: after, Status: 429, RetryAfter: "1"})
	}
}

// ClearFaults removes the faults FaultRate injected that have not fired.
func (e *Env) ClearFaults() {
	e.ITGlue.ClearFaults()
	e.Hudu.ClearFaults()
	e.HaloPSA.ClearFaults()
	e.ConnectWise.ClearFaults()
	e.Autotask.ClearFaults()
	e.Graph.ClearFaults()
}

// Counter is how many requests of one kind a fake received.
type Counter struct {
	Integration string `json:"integration"`
	Kind        string `json:"kind"`
	// Class is list, create or other.
	Class string `json:"class"`
	N     int64  `json:"n"`
}

// Requests returns every fake's request counters since Start or the last
// ResetRequests, sorted by integration and kind; kinds never asked for are
// left out. AD counts searches (one per page) and binds over every domain
// controller; SMTP counts accepted messages.
func (e *Env) Requests() []Counter {
	var out []Counter
	add := func(integration string, m map[string]int64, class func(string) string) {
		for k, n := range m {
			if n > 0 {
				out = append(out, Counter{Integration: integration, Kind: k, Class: class(k), N: n})
			}
		}
	}
	add(Graph, e.Graph.Counts(), graphClass)
	add(ITGlue, e.ITGlue.Counts(), itglueClass)
	add(Hudu, e.Hudu.Counts(), huduClass)
	add(HaloPSA, e.HaloPSA.Counts(), haloClass)
	add(ConnectWise, e.ConnectWise.Counts(), cwClass)
	add(Autotask, e.Autotask.Counts(), autotaskClass)
	var ad adtest.Stats
	for _, s := range e.AD {
		st := s.Stats()
		ad.Binds += st.Binds
		ad.Pages += st.Pages
		ad.PasswordChanges += st.PasswordChanges
	}
	add(ActiveDirectory, map[string]int64{"search.page": ad.Pages, "bind": ad.Binds, "password": ad.PasswordChanges}, func(k string) string {
		switch k {
		case "search.page":
			return ClassList
		case "password":
			return ClassCreate
		}
		return ClassOther
	})
	add(SMTP, map[string]int64{"message": e.SMTP.Counts().Accepted - e.smtpBase}, func(string) string { return ClassCreate })
	sort.Slice(out, func(i, j int) bool {
		if out[i].Integration != out[j].Integration {
			return out[i].Integration < out[j].Integration
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// ResetRequests sets every fake's counters to zero.
func (e *Env) ResetRequests() {
	e.Graph.ResetCounts()
	e.ITGlue.ResetCounts()
	e.Hudu.ResetCounts()
	e.HaloPSA.ResetCounts()
	e.ConnectWise.ResetCounts()
	e.Autotask.ResetCounts()
	for _, s := range e.AD {
		s.ResetStats()
	}
	e.smtpBase = e.SMTP.Counts().Accepted
}

func graphClass(k string) string {
	switch k {
	case m365test.KindUsers, m365test.KindDelta, m365test.KindGroupMembers, m365test.KindRoleMembers, m365test.KindGroups, m365test.KindRoles:
		return ClassList
	case m365test.KindUserUpdate:
		return ClassCreate
	}
	return ClassOther
}

func itglueClass(k string) string {
	switch k {
	case itgluetest.KindListPasswords, itgluetest.KindListCategories:
		return ClassList
	case itgluetest.KindCreatePassword, itgluetest.KindCreateCategory:
		return ClassCreate
	}
	return ClassOther
}

func huduClass(k string) string {
	switch k {
	case hudutest.KindListPasswords:
		return ClassList
	case hudutest.KindCreatePassword:
		return ClassCreate
	}
	return ClassOther
}

func haloClass(k string) string {
	switch k {
	case halopsatest.KindListUsers:
		return ClassList
	case halopsatest.KindCreateUsers:
		return ClassCreate
	}
	return ClassOther
}

func cwClass(k string) string {
	switch k {
	case cwtest.KindListContacts:
		return ClassList
	case cwtest.KindCreateContact:
		return ClassCreate
	}
	return ClassOther
}

func autotaskClass(k string) string {
	switch k {
	case autotasktest.KindQueryContacts:
		return ClassList
	case autotasktest.KindCreateContact:
		return ClassCreate
	}
	return ClassOther
}

// rateSpec is the tenant's rate_limit for Options.RateLimit.
func (o Options) rateSpec() string {
	return strconv.FormatFloat(o.RateLimit, 'g', -1, 64) + "/s"
}
