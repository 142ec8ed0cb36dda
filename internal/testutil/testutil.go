// Package testutil holds what ssmkit's tests share: the rule for a missing
// tool (skip on a developer's machine, fail in CI) and small test doubles.
// Only tests import it: it imports testing.
package testutil

import (
	"fmt"
	"os"
	"testing"
)

// EnvCI names the switch CI sets (.ci/run exports SSMKIT_CI=1): with it, a
// test whose tool (moto, terraform, the AWS CLI…) is missing fails instead
// of skipping, so a CI machine without them cannot go green by skipping.
const EnvCI = "SSMKIT_CI"

// Install hints for the tools tests need, printed with a missing tool.
const (
	InstallMoto = "install moto for the python3 on PATH: python3 -m pip install 'moto[server]==5.2.1' " +
		"(or point SSMKIT_PYTHON at an interpreter that has it)"
	InstallTerraform = "install Terraform >= 1.11 on PATH and the hashicorp/aws provider as a filesystem mirror " +
		"in /opt/tf-plugins (terraform providers mirror /opt/tf-plugins in a configuration that requires it), " +
		"or set SSMKIT_TF_PLUGIN_DIR to a mirror"
	InstallAWSCLI = "install the AWS CLI on PATH: apt-get install awscli, or python3 -m pip install awscli"
)

// ToolsRequired reports whether a missing tool fails a test ($SSMKIT_CI=1).
func ToolsRequired() bool { return os.Getenv(EnvCI) == "1" }

// MissingTool ends the test because something it needs is not installed:
// it skips, or with $SSMKIT_CI=1 it fails. The message names what is
// missing and how to install it.
func MissingTool(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if ToolsRequired() {
		tb.Fatalf("%s ($%s=1: a missing tool fails the test)", msg, EnvCI)
	}
	tb.Skipf("skipping: %s", msg)
}
