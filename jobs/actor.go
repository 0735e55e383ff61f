package jobs

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// An audit event's actor is what the process declares (AUTOIMPORT_ACTOR,
// or "autoimport" for the job) followed by the operating-system account
// and host the process runs as, which no setting changes:
// "alice (os bob@build-7)". A declared name proves nothing by itself;
// the account and host say who could have typed it.

// RecordedActor is declared with this process's operating-system user and
// host appended, as audit events record it.
func RecordedActor(declared string) string {
	id := runningAs()
	return strings.TrimSpace(declared) + " (os " + id.user + "@" + id.host + ")"
}

// ParseActor splits a recorded actor into the declared name and the
// operating-system user and host; an actor recorded without them (by an
// older version) is all declared.
func ParseActor(recorded string) (declared, osUser, host string) {
	i := strings.LastIndex(recorded, " (os ")
	if i < 0 || !strings.HasSuffix(recorded, ")") {
		return recorded, "", ""
	}
	who := recorded[i+len(" (os ") : len(recorded)-1]
	at := strings.LastIndex(who, "@")
	if at < 0 {
		return recorded, "", ""
	}
	return recorded[:i], who[:at], who[at+1:]
}

// osAccount is the operating-system user and host this process runs as.
type osAccount struct{ user, host string }

var runningAs = sync.OnceValue(func() osAccount {
	id := osAccount{user: "uid " + strconv.Itoa(os.Getuid()), host: "unknown-host"}
	if u, err := user.Current(); err == nil && u.Username != "" {
		id.user = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		id.host = h
	}
	// The separators of the recorded form stay unambiguous.
	clean := strings.NewReplacer("(", "", ")", "", "@", "", " ", "")
	id.user, id.host = clean.Replace(id.user), clean.Replace(id.host)
	return id
})
