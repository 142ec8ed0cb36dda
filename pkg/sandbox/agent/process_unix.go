//go:build unix

package agent

import (
	"syscall"

	"github.com/ssmkit/ssmkit/internal/procfs"
)

// credential is who a RunAs session's processes run as.
type credential = syscall.Credential

func newCredential(uid, gid uint32, groups []uint32) *credential {
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}
}

// sysProcAttr starts the process in a new session (so that killing the
// session kills everything it started) with ru's credentials.
func sysProcAttr(ru *runAsUser) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setsid: true}
	if ru != nil && ru.cred != nil {
		attr.Credential = ru.cred
	}
	return attr
}

// killSession kills the process group and the session led by pid:
// everything a shell or command started, including jobs that the shell's
// job control moved to their own process groups. The caller reaps pid.
func killSession(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, p := range sessionMembers(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// sessionMembers lists the processes whose session id or process group is
// sid, from /proc. Elsewhere it finds none and killSession relies on the
// process group.
func sessionMembers(sid int) []int {
	var pids []int
	for _, p := range procfs.All() {
		if p.PID != sid && (p.SID == sid || p.PGID == sid) {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
