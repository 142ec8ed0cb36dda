package session

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Without separate output streams a NonInteractiveCommands session sends
// no exit code at all (§3.4.5, §11.25): the agent streams the merged output
// and ends. The only honest way to learn the status is to ask the remote
// shell to print it. StatusCommand wraps a command so that, after its
// output, it prints one line "\n<marker><status>\n"; a StatusWriter takes
// that line off the output and keeps the status.

// StatusCommand returns command wrapped for a POSIX shell so that its exit
// status follows its output on a line of its own after marker, and the
// marker: random, so that the command's own output cannot fake it. The
// command runs in a subshell, so that an `exit` in it still reports.
func StatusCommand(command string) (wrapped, marker string) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	marker = "__ssmkit_status_" + hex.EncodeToString(b[:]) + "__="
	script := "(:\n" + command + "\n); printf '\\n%s%d\\n' '" + marker + "' \"$?\""
	return "sh -c " + shellQuote(script), marker
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// StatusWriter passes output on to W, holding back only what could be the
// start of the status line, and takes the status line off the end.
type StatusWriter struct {
	mu     sync.Mutex
	w      io.Writer
	marker []byte // "\n" + marker
	held   []byte
}

// NewStatusWriter returns a StatusWriter for marker (see StatusCommand).
func NewStatusWriter(w io.Writer, marker string) *StatusWriter {
	return &StatusWriter{w: w, marker: []byte("\n" + marker)}
}

// Write passes p on, except what may belong to the status line.
func (s *StatusWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, p...)
	if i := bytes.Index(s.held, s.marker); i >= 0 {
		if _, err := s.w.Write(s.held[:i]); err != nil {
			return 0, err
		}
		s.held = append(s.held[:0], s.held[i:]...)
		return len(p), nil
	}
	// Keep the longest tail that is a prefix of the marker.
	keep := 0
	for k := min(len(s.held), len(s.marker)-1); k > 0; k-- {
		if bytes.HasPrefix(s.marker, s.held[len(s.held)-k:]) {
			keep = k
			break
		}
	}
	if out := s.held[:len(s.held)-keep]; len(out) > 0 {
		if _, err := s.w.Write(out); err != nil {
			return 0, err
		}
	}
	s.held = append(s.held[:0], s.held[len(s.held)-keep:]...)
	return len(p), nil
}

// Close reads the status line, or passes on what was held back when there
// is none, and returns the status (NoExitCode without a status line).
func (s *StatusWriter) Close() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest, ok := bytes.CutPrefix(s.held, s.marker); ok {
		digits := strings.TrimSuffix(string(rest), "\n")
		if code, err := strconv.Atoi(digits); err == nil && len(rest) > len(digits) {
			s.held = nil
			return code, nil
		}
	}
	if len(s.held) > 0 {
		if _, err := s.w.Write(s.held); err != nil {
			return NoExitCode, err
		}
		s.held = nil
	}
	return NoExitCode, nil
}
