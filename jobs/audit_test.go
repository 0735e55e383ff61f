package jobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msp-tools/autoimport/internal/secret"
	"github.com/msp-tools/autoimport/jobs"
)

// TestChainHashes checks the chain's hashes against values computed apart
// (Python's hmac and hashlib over the same length-prefixed fields, the key
// derived with HKDF-SHA256 from the bytes 0..31 and the label "audit"), so
// that neither the derivation nor the encoding can change unnoticed: every
// stored chain depends on them.
func TestChainHashes(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	master, err := secret.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	k := jobs.NewAuditKey(master)
	e := jobs.AuditEvent{ID: 99, Seq: 3, At: time.UnixMicro(1700000000123456).UTC(), Actor: "alice", Action: "rotation.password-read", Customer: "acme",
		Subject: "ad:g1", After: `{"a":2}`, PrevHash: jobs.GenesisHash}
	if got := k.ID(); got != "0515f5cbf1cc008f" {
		t.Errorf("key id %s", got)
	}
	if got := k.Hash(e); got != "c053c70ae8ce76d5f1d9df0fc3eef8600857359e8c2445040ff2bdc4c3554c3f" {
		t.Errorf("keyed hash %s", got)
	}
	var unkeyed *jobs.AuditKey
	if got := unkeyed.Hash(e); got != "eac751431cfb2aab7ba3f7428d91426b989ba37af84659962b8471e1a2ab96e5" {
		t.Errorf("unkeyed hash %s", got)
	}
	// The id orders events across chains and is no part of the hash; the
	// chain, the place in it and every field are.
	moved := e
	moved.ID = 1
	if k.Hash(moved) != k.Hash(e) {
		t.Error("the hash depends on the id")
	}
	for _, change := range []func(*jobs.AuditEvent){
		func(e *jobs.AuditEvent) { e.Customer = "globex" },
		func(e *jobs.AuditEvent) { e.Seq = 4 },
		func(e *jobs.AuditEvent) { e.At = e.At.Add(time.Microsecond) },
		func(e *jobs.AuditEvent) { e.Actor = "mallory" },
		func(e *jobs.AuditEvent) { e.Action = "rotation.set" },
		func(e *jobs.AuditEvent) { e.Subject = "ad:g2" },
		func(e *jobs.AuditEvent) { e.Before = "x" },
		func(e *jobs.AuditEvent) { e.After = "" },
		func(e *jobs.AuditEvent) { e.PrevHash = strings.Repeat("1", 64) },
		// Moving text from one field to the next changes the hash too.
		func(e *jobs.AuditEvent) { e.Actor, e.Action = "alicerotation", ".password-read" },
	} {
		c := e
		change(&c)
		if k.Hash(c) == k.Hash(e) {
			t.Errorf("a change leaves the hash: %+v", c)
		}
	}
}

func TestParseKeptHead(t *testing.T) {
	hash := strings.Repeat("0a", 32)
	for _, tc := range []struct {
		in   string
		want jobs.AuditHead
		err  string
	}{
		{"acme-dental=12:" + hash, jobs.AuditHead{Customer: "acme-dental", Seq: 12, Hash: hash}, ""},
		{" @tenant=3:" + strings.ToUpper(hash) + "\n", jobs.AuditHead{Seq: 3, Hash: hash}, ""},
		{"12:" + hash, jobs.AuditHead{}, "write CHAIN=SEQ:HASH"},
		{"Acme=12:" + hash, jobs.AuditHead{}, "neither a customer id nor @tenant"},
		{"=12:" + hash, jobs.AuditHead{}, "neither a customer id nor @tenant"},
		{"acme=0:" + hash, jobs.AuditHead{}, "want SEQ:HASH"},
		{"acme=-1:" + hash, jobs.AuditHead{}, "want SEQ:HASH"},
		{"acme=12:" + hash[:10], jobs.AuditHead{}, "want SEQ:HASH"},
		{"acme=12:" + strings.Repeat("zz", 32), jobs.AuditHead{}, "want SEQ:HASH"},
		{"acme=12", jobs.AuditHead{}, "want SEQ:HASH"},
	} {
		got, err := jobs.ParseKeptHead(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
	}
}

// FuzzParseKeptHead: whatever a person passes as --head is a head or a
// usage error, never a crash, and a head prints back as it was read.
func FuzzParseKeptHead(f *testing.F) {
	f.Add("acme=12:" + strings.Repeat("0a", 32))
	f.Add("@tenant=1:" + strings.Repeat("F", 64))
	f.Add("=:")
	f.Add("acme=99999999999999999999:" + strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, s string) {
		h, err := jobs.ParseKeptHead(s)
		if err != nil {
			var ue *jobs.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: %v is not a usage error", s, err)
			}
			return
		}
		back, err := jobs.ParseKeptHead(h.Chain() + "=" + h.String())
		if err != nil || back != h {
			t.Fatalf("%q read as %+v prints as %s=%s, which reads as %+v, %v", s, h, h.Chain(), h, back, err)
		}
	})
}
