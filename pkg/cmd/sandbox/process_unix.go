//go:build unix

package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if st := procState(b); st == "Z" || st == "X" {
			return false
		}
	}
	return true
}

// procState is the state field of /proc/<pid>/stat ("R", "S", "Z", …).
func procState(stat []byte) string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+3 > len(stat) {
		return ""
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 1 {
		return ""
	}
	return f[0]
}

// procPPID is the parent pid field of /proc/<pid>/stat.
func procPPID(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// descendants lists every process below pid (Linux /proc; empty
// elsewhere).
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		children[procPPID(b)] = append(children[procPPID(b)], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

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
