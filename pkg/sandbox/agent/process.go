package agent

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// runAsUser is who a shell or command runs as; nil means the agent's own
// user.
type runAsUser struct {
	name string
	home string
	cred *credential // nil when no switch is needed
}

// resolveRunAs decides who the session's processes run as (§5.7): with
// runAsEnabled, the task's RunAsUser, else the document's runAsDefaultUser.
// The sandbox cannot create users, so a user that does not exist fails the
// session; "root" is refused as the real agent refuses it.
func (s *session) resolveRunAs() (*runAsUser, error) {
	if s.a.cfg.IgnoreRunAs || !bool(s.doc.Inputs.RunAsEnabled) {
		return nil, nil
	}
	name := strings.TrimSpace(s.task.RunAsUser)
	if name == "" {
		name = strings.TrimSpace(s.doc.Inputs.RunAsDefaultUser)
	}
	if name == "" {
		return nil, errors.New("runAsEnabled is set but no RunAs user is named: set runAsDefaultUser in the session preferences")
	}
	if name == "root" {
		return nil, errors.New("the RunAs user root is not allowed: Session Manager does not run sessions as root")
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("the RunAs user %q does not exist on this instance: the sandbox agent cannot create users; create it or turn runAsEnabled off", name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the RunAs user %q has a non-numeric uid or gid", name)
	}
	ru := &runAsUser{name: name, home: u.HomeDir}
	if euid := os.Geteuid(); euid != 0 {
		if uint64(euid) == uid {
			return ru, nil
		}
		return nil, fmt.Errorf("cannot run the session as %q: the sandbox agent runs as uid %d, not root; start it as root or turn runAsEnabled off", name, euid)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	ru.cred = newCredential(uint32(uid), uint32(gid), groups)
	return ru, nil
}

// environment is the session processes' environment (§7.2).
func (s *session) environment(ru *runAsUser, terminal bool) []string {
	env := append([]string(nil), s.a.cfg.Env...)
	set := func(k, v string) {
		for i, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				env[i] = k + "=" + v
				return
			}
		}
		env = append(env, k+"="+v)
	}
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	if terminal {
		set("TERM", "xterm-256color")
	}
	if !has("LANG") {
		set("LANG", "C.UTF-8")
	}
	switch {
	case ru != nil:
		set("HOME", ru.home)
		set("USER", ru.name)
		set("LOGNAME", ru.name)
	case !has("HOME"):
		if home, err := os.UserHomeDir(); err == nil {
			set("HOME", home)
		}
	}
	return env
}

// workDir is where the session's processes start: the RunAs user's home
// (or / if it has none), else Config.WorkDir.
func (s *session) workDir(ru *runAsUser) string {
	if ru != nil && ru.cred != nil {
		if fi, err := os.Stat(ru.home); err == nil && fi.IsDir() {
			return ru.home
		}
		return "/"
	}
	return s.a.cfg.WorkDir
}

// exitCode is the exit status of a finished process, 128+n for a signal.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
