package session

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// ParseParameters turns repeated "key=value" flags into StartSession
// parameters. A key given more than once collects every value in order.
func ParseParameters(kvs []string) (map[string][]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	params := map[string][]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q is not key=value", kv)
		}
		params[k] = append(params[k], v)
	}
	return params, nil
}

// RunInteractive runs RunShell for the process: when isTTY says that in
// (the process's stdin) is a terminal, it fills in sio.TTY, Resize and
// Signals, and detaches from ctx's cancellation, because Ctrl-C must reach
// the remote shell as a keystroke rather than end ssmkit (the CLI cancels
// ctx on SIGINT); then only SIGTERM or SIGHUP end the session.
func RunInteractive(ctx context.Context, s *Session, sio ShellIO, in *os.File, isTTY bool) error {
	if in != nil && isTTY {
		if tty := TerminalFor(in); tty != nil {
			resize, signals, stop := NotifyTerminalSignals()
			defer stop()
			sio.TTY, sio.Resize, sio.Signals = tty, resize, signals
			var cancel context.CancelFunc
			ctx, cancel = signal.NotifyContext(context.WithoutCancel(ctx), syscall.SIGTERM, syscall.SIGHUP)
			defer cancel()
		}
	}
	return RunShell(ctx, s, sio)
}
