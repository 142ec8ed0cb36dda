//go:build linux

package moto

import "syscall"

// setParentDeathSignal asks the kernel to kill moto if the test binary dies without running
// its cleanups (a `go test -timeout` panic, say), so no orphan keeps the port.
func setParentDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
