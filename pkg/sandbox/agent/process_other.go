//go:build !unix

package agent

import (
	"os"
	"syscall"
)

// credential: RunAs needs a Unix system (resolveRunAs refuses it
// elsewhere, where the agent's uid is never 0).
type credential struct{}

func newCredential(uint32, uint32, []uint32) *credential { return &credential{} }

func sysProcAttr(*runAsUser) *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// killSession kills pid alone: without process groups there is nothing
// more to reach.
func killSession(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// signalGroup ends pid: Windows has no signals to forward.
func signalGroup(pid int, _ syscall.Signal) { killSession(pid) }
