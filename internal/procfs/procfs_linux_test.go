//go:build linux

package procfs

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// TestLiveProcesses reads this process and a child of it from the real
// /proc.
func TestLiveProcesses(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.State == "" || st.PGID != syscall.Getpgrp() {
		t.Errorf("ReadStat(self) = %+v, want ppid %d", st, os.Getppid())
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if d := Descendants(os.Getpid()); !slices.Contains(d, cmd.Process.Pid) {
		t.Errorf("Descendants(self) = %v, want it to hold %d", d, cmd.Process.Pid)
	}
	var found bool
	for _, c := range Children()[os.Getpid()] {
		if c.PID == cmd.Process.Pid && c.Comm == "sleep" {
			found = true
		}
	}
	if !found {
		t.Errorf("Children()[self] = %+v, want sleep %d", Children()[os.Getpid()], cmd.Process.Pid)
	}
}
