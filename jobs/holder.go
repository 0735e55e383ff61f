package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A lease holder's name says which process holds the lease, so that a
// person reading the leases table knows, and so that a later process on
// the same host can prove the holder gone and take its lease over at
// once instead of waiting for it to expire:
//
//	host/pid/random boot=BOOTID start=TICKS pidns=INODE
//
// The random part keeps two processes that share a host name and pid
// (containers), or two runners of one process, distinct. boot, start and
// pidns are what Linux says of the process (/proc); elsewhere they are
// left out and no holder is ever proved gone.

// processIdentity is what one process says of itself, or of another.
type processIdentity struct {
	host  string
	pid   int
	boot  string // the kernel's boot id: another means the host rebooted
	start string // the process's start time in clock ticks since boot
	pidns string // the pid namespace (containers share a host name)
}

// procRoot is where the proc file system is; tests point it elsewhere.
var procRoot = "/proc"

func readProc(path string) string {
	b, err := os.ReadFile(procRoot + "/" + path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// processStart is field 22 of /proc/PID/stat, the start time: a pid
// reused by another process has another.
func processStart(pid string) string {
	stat := readProc(pid + "/stat")
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func pidNamespace(pid string) string {
	l, err := os.Readlink(procRoot + "/" + pid + "/ns/pid")
	if err != nil {
		return ""
	}
	return l
}

// thisProcess is the identity of the running process.
func thisProcess() processIdentity {
	h, _ := os.Hostname()
	self := strconv.Itoa(os.Getpid())
	return processIdentity{host: h, pid: os.Getpid(), boot: readProc("sys/kernel/random/boot_id"), start: processStart(self), pidns: pidNamespace(self)}
}

// newHolderName names one lease holder of this process.
func newHolderName() string {
	p := thisProcess()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s/%d/%s", p.host, p.pid, hex.EncodeToString(b[:]))
	for _, kv := range [][2]string{{"boot", p.boot}, {"start", p.start}, {"pidns", p.pidns}} {
		if kv[1] != "" && !strings.ContainsAny(kv[1], " =") {
			name += " " + kv[0] + "=" + kv[1]
		}
	}
	return name
}

// parseHolder reads a holder name made by newHolderName; ok is false for
// any other name (a holder set by hand, an older format).
func parseHolder(name string) (processIdentity, bool) {
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return processIdentity{}, false
	}
	parts := strings.Split(fields[0], "/")
	if len(parts) != 3 {
		return processIdentity{}, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return processIdentity{}, false
	}
	p := processIdentity{host: parts[0], pid: pid}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "boot":
			p.boot = v
		case "start":
			p.start = v
		case "pidns":
			p.pidns = v
		}
	}
	return p, true
}

// holderGone reports, with the reason, that the named holder is provably
// not running: it names this host, and the host has rebooted since, or
// its process (in this pid namespace) is gone or is another process now.
// Anything less certain is not proof: a holder on another host, or in
// another container, is alive as far as this process can tell.
func holderGone(name string) (string, bool) {
	h, ok := parseHolder(name)
	if !ok {
		return "", false
	}
	me := thisProcess()
	if h.host != me.host || h.host == "" {
		return "", false
	}
	if h.boot != "" && me.boot != "" && h.boot != me.boot {
		return "the host " + h.host + " has rebooted since", true
	}
	if h.pidns == "" || h.pidns != me.pidns || h.start == "" {
		return "", false
	}
	if h.pid == me.pid && h.start == me.start {
		return "", false // this very process
	}
	pid := strconv.Itoa(h.pid)
	if _, err := os.Stat(procRoot + "/" + pid); os.IsNotExist(err) {
		return fmt.Sprintf("process %d on %s is not running", h.pid, h.host), true
	}
	if start := processStart(pid); start != "" && start != h.start {
		return fmt.Sprintf("process %d on %s is not running (another process has its pid)", h.pid, h.host), true
	}
	return "", false
}
