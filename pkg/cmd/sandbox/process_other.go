//go:build !unix

package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

var errUnsupported = errors.New("the background sandbox needs a Unix system; use 'ssmkit sandbox up --foreground'")

func detach(*exec.Cmd) {}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p != nil
}

func descendants(int) []int { return nil }

func isServeProcess(int) bool { return true }

func stopProcess(int, time.Duration) error { return errUnsupported }

func killGroup(int) error { return errUnsupported }
