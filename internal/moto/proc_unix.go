//go:build unix

package moto

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, so that Close can signal
// everything moto started and a Ctrl-C aimed at `go test` does not race our cleanup.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)
}

// signalGroup sends SIGTERM (or SIGKILL when kill is set) to the child's process group.
func signalGroup(cmd *exec.Cmd, kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	// With Setpgid the group id equals the leader's pid.
	return syscall.Kill(-cmd.Process.Pid, sig)
}
