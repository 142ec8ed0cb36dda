//go:build unix

package session

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals forwarded to a remote shell as keystrokes (§7.1).
const (
	sigQuit = syscall.SIGQUIT
	sigTSTP = syscall.SIGTSTP
)

// NotifyTerminalSignals starts catching the signals an interactive shell
// needs: SIGWINCH (terminal resized) on resize, and SIGINT, SIGQUIT and
// SIGTSTP on signals, so that they reach the remote shell instead of
// stopping ssmkit. stop restores the default handling.
func NotifyTerminalSignals() (resize <-chan struct{}, signals <-chan os.Signal, stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGQUIT, syscall.SIGTSTP)
	rs := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				select {
				case rs <- struct{}{}:
				default: // a resize is already pending
				}
			case <-done:
				return
			}
		}
	}()
	var stopped bool
	return rs, sigs, func() {
		if stopped {
			return
		}
		stopped = true
		signal.Stop(winch)
		signal.Stop(sigs)
		close(done)
	}
}
