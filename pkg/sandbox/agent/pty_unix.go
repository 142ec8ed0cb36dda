//go:build unix

package agent

import (
	"os"
	"os/exec"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// startPTY starts cmd on a new pty and returns its master as a file Go's poller drives.
//
// creack/pty's ioctls go through (*os.File).Fd, which puts the master in blocking mode for
// good: a Write into a full pty whose shell is gone then blocks in the kernel forever, Close
// cannot interrupt it, and the session (and the agent's Close) hangs — what an upload cut off
// mid-way did. A non-blocking duplicate, registered with the poller by os.NewFile, waits in the
// poller instead, so Close ends a pending Write with os.ErrClosed.
func startPTY(cmd *exec.Cmd) (*os.File, error) {
	ptmx, err := pty.Start(cmd)
	if err != nil {
		return nil, err
	}
	defer ptmx.Close()
	fd, err := unix.Dup(int(ptmx.Fd()))
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return os.NewFile(uintptr(fd), ptmx.Name()), nil
}

// setPTYSize sets the terminal size without (*os.File).Fd, which would make the master blocking
// again (see startPTY).
func setPTYSize(ptmx *os.File, cols, rows uint16) error {
	sc, err := ptmx.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := sc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	}); err != nil {
		return err
	}
	return ierr
}
