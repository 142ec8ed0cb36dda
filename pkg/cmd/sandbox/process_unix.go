//go:build unix

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssmkit/ssmkit/internal/procfs"
)

// detach starts the child in a session of its own, so that the terminal's
// signals and hang-up do not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	if st, err := procfs.ReadStat(pid); err == nil && (st.State == "Z" || st.State == "X") {
		return false
	}
	return true
}

// descendants lists every process below pid (Linux /proc; empty
// elsewhere).
func descendants(pid int) []int { return procfs.Descendants(pid) }

// isServeProcess checks that pid runs `ssmkit sandbox serve` (or `up
// --foreground`), so that a recycled pid is never signalled. Without /proc
// it trusts the state file.
func isServeProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true
	}
	joined := " " + strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") + " "
	return strings.Contains(joined, " sandbox ") && (strings.Contains(joined, " serve ") || strings.Contains(joined, " up "))
}

// stopProcess sends SIGTERM and waits up to grace for pid to exit, then
// kills its process group.
func stopProcess(pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("stopping the sandbox (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = killGroup(pid)
			time.Sleep(200 * time.Millisecond)
			if processAlive(pid) {
				return fmt.Errorf("the sandbox (pid %d) did not stop after SIGTERM and SIGKILL", pid)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// killGroup kills pid's process group (or pid alone when it leads none).
func killGroup(pid int) error {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		return syscall.Kill(-pid, syscall.SIGKILL)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}
