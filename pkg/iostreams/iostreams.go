// Package iostreams holds the standard streams of a command together with
// what is known about them: whether each is a terminal and whether colour
// may be used. Commands write data to Out, and progress, ✓ lines and errors
// to ErrOut, so that piping ssmkit's output never captures decoration.
package iostreams

import (
	"bytes"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads from and writes to.
type IOStreams struct {
	// In is the command's standard input.
	In io.ReadCloser
	// Out receives data: tables, JSON, command output.
	Out io.Writer
	// ErrOut receives everything that is not data: errors, hints, progress.
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool

	// colorDisabled wins over colorForced: an explicit opt-out (NO_COLOR,
	// --no-color, TERM=dumb) is never overridden by CLICOLOR_FORCE.
	colorDisabled bool
	colorForced   bool

	// errMu serialises the progress indicator's writes to ErrOut.
	errMu sync.Mutex
}

// System returns IOStreams bound to the process's standard streams, with
// terminal detection done once and colour preferences read from the
// environment.
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
	}
	s.ApplyColorEnv(os.Getenv)
	return s
}

// Test returns IOStreams backed by in-memory buffers, for tests. None of the
// streams is a terminal until the Set*TTY methods say otherwise, so colour
// is off by default.
func Test() (s *IOStreams, stdin, stdout, stderr *bytes.Buffer) {
	stdin = &bytes.Buffer{}
	stdout = &bytes.Buffer{}
	stderr = &bytes.Buffer{}
	s = &IOStreams{
		In:     io.NopCloser(stdin),
		Out:    stdout,
		ErrOut: stderr,
	}
	return s, stdin, stdout, stderr
}

func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// IsStdinTTY reports whether standard input is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether standard error is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// SetStdinTTY overrides terminal detection for standard input.
func (s *IOStreams) SetStdinTTY(isTTY bool) { s.stdinTTY = isTTY }

// SetStdoutTTY overrides terminal detection for standard output.
func (s *IOStreams) SetStdoutTTY(isTTY bool) { s.stdoutTTY = isTTY }

// SetStderrTTY overrides terminal detection for standard error.
func (s *IOStreams) SetStderrTTY(isTTY bool) { s.stderrTTY = isTTY }

// ApplyColorEnv reads the colour conventions from the environment:
// NO_COLOR (any non-empty value) and TERM=dumb turn colour off;
// CLICOLOR_FORCE (non-empty, not "0") turns it on even when output is not a
// terminal. See https://no-color.org and https://bixense.com/clicolors.
func (s *IOStreams) ApplyColorEnv(getenv func(string) string) {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		s.colorDisabled = true
	}
	if v := getenv("CLICOLOR_FORCE"); v != "" && v != "0" {
		s.colorForced = true
	}
}

// SetColorEnabled forces colour on or off regardless of the environment and
// terminal detection. --no-color calls SetColorEnabled(false).
func (s *IOStreams) SetColorEnabled(enabled bool) {
	s.colorDisabled = !enabled
	s.colorForced = enabled
}

// ColorEnabled reports whether output may contain ANSI colour sequences.
// Colour is on only when standard output is a terminal, unless it was forced
// on (CLICOLOR_FORCE) or off (NO_COLOR, --no-color).
func (s *IOStreams) ColorEnabled() bool {
	if s.colorDisabled {
		return false
	}
	if s.colorForced {
		return true
	}
	return s.stdoutTTY
}

// ColorScheme returns a ColorScheme that colours only when ColorEnabled.
func (s *IOStreams) ColorScheme() *ColorScheme {
	return &ColorScheme{enabled: s.ColorEnabled()}
}
