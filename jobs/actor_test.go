package jobs

import (
	"os"
	"os/user"
	"testing"
)

func TestRecordedActorCarriesTheOSUserAndHost(t *testing.T) {
	host, _ := os.Hostname()
	u, err := user.Current()
	if err != nil {
		t.Skipf("no operating-system user to compare with: %v", err)
	}
	rec := RecordedActor("alice.spoofed")
	declared, osUser, h := ParseActor(rec)
	if declared != "alice.spoofed" || osUser != u.Username || h != host {
		t.Fatalf("RecordedActor = %q, parsed %q %q %q; want alice.spoofed, %s, %s", rec, declared, osUser, h, u.Username, host)
	}
	// A declared name dressed as an OS identity stays declared.
	declared, osUser, _ = ParseActor(RecordedActor("root (os root@prod)"))
	if declared != "root (os root@prod)" || osUser != u.Username {
		t.Fatalf("spoofed identity parsed as %q, %q", declared, osUser)
	}
	if d, o, h := ParseActor("tech@msp"); d != "tech@msp" || o != "" || h != "" {
		t.Fatalf("an actor from an older version parsed as %q %q %q", d, o, h)
	}
}
