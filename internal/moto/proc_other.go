//go:build !unix

package moto

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist.
func setProcessGroup(*exec.Cmd) {}

// signalGroup kills the child itself where process groups do not exist.
func signalGroup(cmd *exec.Cmd, _ bool) error {
	return cmd.Process.Kill()
}
