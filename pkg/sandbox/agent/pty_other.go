//go:build !unix

package agent

import (
	"errors"
	"os"
	"os/exec"
)

// errNoPTY: terminals are a Unix thing here; the emulated agent's shells
// need one.
var errNoPTY = errors.New("the sandbox's emulated agent needs a Unix system for terminal sessions")

func startPTY(*exec.Cmd) (*os.File, error) { return nil, errNoPTY }

func setPTYSize(*os.File, uint16, uint16) error { return errNoPTY }
