//go:build !unix

package session

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals forwarded to a remote shell as keystrokes (§7.1). Windows has
// no SIGTSTP; the value never matches a real signal.
const (
	sigQuit = syscall.SIGQUIT
	sigTSTP = syscall.Signal(-1)
)

// NotifyTerminalSignals starts catching SIGINT and SIGQUIT so that they
// reach the remote shell instead of stopping ssmkit. Windows has no
// SIGWINCH, so resize never fires. stop restores the default handling.
func NotifyTerminalSignals() (resize <-chan struct{}, signals <-chan os.Signal, stop func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGQUIT)
	return nil, sigs, func() { signal.Stop(sigs) }
}
