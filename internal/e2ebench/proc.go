package e2ebench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssmkit/ssmkit/internal/procfs"
)

// procCPU returns the user+system CPU time pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	st, err := procfs.ReadStat(pid)
	return st.CPU, err
}

// procPeakRSS returns pid's peak resident set size (VmHWM) in bytes.
func procPeakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bad VmHWM line %q", sc.Text())
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// childNamed returns the PID of a child of ppid whose executable's base
// name is name, or 0.
func childNamed(ppid int, name string) int {
	for _, c := range procfs.Children()[ppid] {
		// comm is truncated to 15 bytes.
		if c.Comm != "" && strings.HasPrefix(name, c.Comm) {
			return c.PID
		}
	}
	return 0
}

// usage is what a finished process used, from wait4's rusage.
type usage struct {
	CPU     time.Duration // user + system
	PeakRSS int64         // bytes
	Wall    time.Duration
}

// processUsage reads the rusage of a process cmd has waited for.
func processUsage(cmd *exec.Cmd, wall time.Duration) usage {
	u := usage{Wall: wall}
	if cmd.ProcessState == nil {
		return u
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.PeakRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u
}
