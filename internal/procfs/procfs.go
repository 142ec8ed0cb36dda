// Package procfs reads the few fields of Linux's /proc/<pid>/stat that
// ssmkit needs: the command name, state, parent and CPU time of a process,
// and the process tree. Elsewhere /proc does not exist and every read
// fails, which callers treat as "unknown".
package procfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which is 100 on every Linux ABI Go supports.
const ClockTick = 10 * time.Millisecond

// Stat is the part of /proc/<pid>/stat that ssmkit reads.
type Stat struct {
	Comm  string // the executable's name, truncated by the kernel to 15 bytes
	State string // "R", "S", "Z", …
	PPID  int
	PGID  int           // process group
	SID   int           // session
	CPU   time.Duration // user + system time so far
}

// ErrFormat means a stat line could not be parsed.
var ErrFormat = errors.New("unexpected /proc/<pid>/stat line")

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses a /proc/<pid>/stat line. The command name (field 2) may
// hold spaces and parentheses, so it is what lies between the first '(' and
// the last ')', and the other fields are counted from that ')'.
func ParseStat(b []byte) (Stat, error) {
	j := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if j < 0 || i < j {
		return Stat{}, ErrFormat
	}
	// f[0] is field 3 (state), f[1] field 4 (ppid), then pgrp and
	// session; utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return Stat{}, ErrFormat
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	sid, err3 := strconv.Atoi(f[3])
	u, err4 := strconv.ParseInt(f[11], 10, 64)
	s, err5 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return Stat{}, ErrFormat
	}
	return Stat{Comm: string(b[j+1 : i]), State: f[0], PPID: ppid, PGID: pgid, SID: sid,
		CPU: time.Duration(u+s) * ClockTick}, nil
}

// All lists every live process, read from /proc (empty without it).
// Processes that end while it reads are left out.
func All() []Process {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			out = append(out, Process{PID: pid, Stat: st})
		}
	}
	return out
}

// Children maps every live process's parent to its children (All).
func Children() map[int][]Process {
	out := map[int][]Process{}
	for _, p := range All() {
		out[p.PPID] = append(out[p.PPID], p)
	}
	return out
}

// Process is one entry of All.
type Process struct {
	PID int
	Stat
}

// Descendants lists every process below pid, breadth first (empty without
// /proc).
func Descendants(pid int) []int {
	children := Children()
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c.PID)
			queue = append(queue, c.PID)
		}
	}
	return out
}
