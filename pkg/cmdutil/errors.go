package cmdutil

import (
	"errors"
	"fmt"
)

// FlagError is a usage error: a bad flag, argument or flag combination.
// The root command prints it with a pointer to --help and exits 2.
type FlagError struct {
	err error
}

// Error returns the message.
func (e *FlagError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *FlagError) Unwrap() error { return e.err }

// FlagErrorf returns a FlagError with a formatted message.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// FlagErrorWrap marks err as a usage error. It returns nil for nil.
func FlagErrorWrap(err error) error {
	if err == nil {
		return nil
	}
	return &FlagError{err: err}
}

// SilentError makes ssmkit exit 1 without printing anything, for commands
// that have already explained the failure themselves (doctor prints its
// ✓/!/X lines and then returns SilentError). The name follows cli/cli.
//
//lint:ignore ST1012 named after cli/cli's cmdutil.SilentError, which STYLE.md follows
var SilentError = errors.New("SilentError")

// ExitCodeError makes ssmkit exit with the given code and print nothing.
// Commands that run something remotely (exec) return it to propagate the
// remote exit status: return cmdutil.ExitCodeError(7). Codes outside
// 0–255 exit 1.
type ExitCodeError int

// Error describes the exit status.
func (e ExitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
