//go:build linux

package session_test

import (
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// TestShellRawModeRestored runs a shell on a real pty: raw mode during the
// session, the terminal's own size sent, and the settings restored after.
func TestShellRawModeRestored(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 132, Rows: 43}); err != nil {
		t.Fatal(err)
	}
	fd := int(tty.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ICANON == 0 {
		t.Fatal("the pty does not start in canonical mode")
	}

	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	term := session.TerminalFor(tty)
	if term == nil {
		t.Fatal("TerminalFor: not a terminal")
	}
	r := startShell(t, testCtx(t), s, session.ShellIO{TTY: term})
	waitFor(t, "banner", func() bool { return r.stdout.String() == sessiontest.Banner })
	during, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if during.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("terminal not in raw mode during the session: lflag %#x", during.Lflag)
	}
	if got := svc.Sizes(s.ID()); len(got) != 1 || got[0] != (wire.SizeData{Cols: 132, Rows: 43}) {
		t.Errorf("sizes = %+v, want 132x43", got)
	}
	r.write(t, "exit\r")
	if err := r.wait(t); err != nil {
		t.Fatalf("RunShell: %v", err)
	}
	after, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("terminal settings not restored:\n before %+v\n after  %+v", before, after)
	}
}
