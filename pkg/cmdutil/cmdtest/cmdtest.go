// Package cmdtest helps the table tests of pkg/cmd/* run one command the
// way the root command runs it. Only tests import it.
package cmdtest

import (
	"bytes"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
)

// Prepare makes cmd behave as under the root command — a flag parse error
// is a usage error (exit 2) — gives it args, and sends cobra's own output
// (usage, help) nowhere.
func Prepare(cmd *cobra.Command, args []string) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.FlagErrorWrap(err) })
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
}
