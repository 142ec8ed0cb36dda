package root

import (
	"runtime/debug"

	"github.com/spf13/cobra"
)

// sessionGCPercent is the garbage collector's goal (GOGC) while a command
// moves a session's bytes: the heap may grow 10 % past what is live
// instead of the default 100 %.
//
// A session's data path allocates little (its message buffers are pooled,
// ~10 MB of garbage per GiB moved), but what is live while it runs — the
// AWS SDK's package-level schemas, the send window, the receive buffers —
// is 10–13 MB, so at the default goal the heap grew to twice that before
// each collection. At 10 % a collection comes every ~1 MB allocated, ~60
// per GiB, ~0.1 s of CPU per GiB; `ssmkit forward`'s peak RSS while moving
// 1 GiB drops by ~9 MB (issue 12's target is 32 MiB). Start-up is not
// slowed: the package inits' collections come before, and a command's own
// start allocates little.
const sessionGCPercent = 10

// sessionMemoryAnnotation marks the commands withSessionMemory wrapped.
const sessionMemoryAnnotation = "ssmkit:session-memory"

// withSessionMemory makes cmd, a command that opens sessions and moves
// their bytes, run with the session GC goal. getenv reads the process
// environment.
func withSessionMemory(cmd *cobra.Command, getenv func(string) string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[sessionMemoryAnnotation] = "true"
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		tuneSessionMemory(getenv)
		return run(c, args)
	}
}

// tuneSessionMemory sets the session GC goal unless the user chose how the
// runtime collects: GOGC or GOMEMLIMIT in the environment (read by the Go
// runtime at start-up) always win. It reports whether it changed anything.
func tuneSessionMemory(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(sessionGCPercent)
	return true
}
