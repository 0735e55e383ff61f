package secret

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// kernelFileSystems are the file systems whose files are the kernel's
// views of processes, devices and itself, not stored data: procfs
// (/proc/self/environ holds AUTOIMPORT_SECRET_KEY), sysfs and the like.
// A file on one is refused wherever it is reached from. devtmpfs reports
// tmpfs's magic (so does every Kubernetes secret volume) and cannot be told
// apart by it; what it holds is device nodes, which are not regular files
// and are refused by that check.
var kernelFileSystems = map[uint32]string{
	unix.PROC_SUPER_MAGIC:    "procfs",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroupfs",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2fs",
	unix.BPF_FS_MAGIC:        "bpffs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.PSTOREFS_MAGIC:      "pstorefs",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	unix.NSFS_MAGIC:          "nsfs",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.SMACK_MAGIC:         "smackfs",
	unix.PIPEFS_MAGIC:        "pipefs",
	unix.SOCKFS_MAGIC:        "sockfs",
	unix.ANON_INODE_FS_MAGIC: "anon_inodefs",
	unix.BDEVFS_MAGIC:        "bdevfs",
}

// checkFileSystem refuses an open file that lives on one of the kernel's
// file systems (fstatfs of the descriptor, not of the name).
func checkFileSystem(f *os.File, name string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var st unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &st) }); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if serr != nil {
		return fmt.Errorf("%s: fstatfs: %w", name, serr)
	}
	if fsName, ok := kernelFileSystems[uint32(st.Type)]; ok {
		return fmt.Errorf("%s is on %s, the kernel's view of the system, not a stored file: configuration is read from regular files only", name, fsName)
	}
	return nil
}
