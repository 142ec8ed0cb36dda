package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// stopGrace is how long `down` waits after SIGTERM before SIGKILL; the
// sandbox itself gives moto 5 s.
const stopGrace = 15 * time.Second

// DownOptions are the inputs of `ssmkit sandbox down`.
type DownOptions struct {
	IO       *iostreams.IOStreams
	StateDir string
	Timeout  time.Duration
}

// NewCmdDown returns the `sandbox down` command.
func NewCmdDown(f *cmdutil.Factory, runF func(*DownOptions) error) *cobra.Command {
	opts := &DownOptions{IO: f.IOStreams, Timeout: stopGrace}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the sandbox and everything it started",
		Long: "Stop the background sandbox: SIGTERM to its process, which stops its agents, their\n" +
			"shells and the moto server it started; then check that no process is left. Stopping a\n" +
			"sandbox that is not running succeeds.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := resolveStateDir(opts.StateDir)
			if err != nil {
				return err
			}
			opts.StateDir = dir
			if runF != nil {
				return runF(opts)
			}
			return downRun(opts)
		},
	}
	stateDirFlag(cmd, &opts.StateDir)
	return cmd
}

func downRun(opts *DownOptions) error {
	cs := opts.IO.ColorScheme()
	st, err := liveState(opts.StateDir)
	if errors.Is(err, errNotRunning) {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s\n", cs.SuccessIcon(), strings.ToUpper(err.Error()[:1])+err.Error()[1:])
		return nil
	}
	if err != nil {
		return err
	}
	if !isServeProcess(st.PID) {
		_ = os.Remove(filepath.Join(opts.StateDir, StateFile))
		return fmt.Errorf("pid %d from %s is not an ssmkit sandbox process; removed the stale state file", st.PID, filepath.Join(opts.StateDir, StateFile))
	}
	// Everything the sandbox started (moto, agents' shells) must be gone
	// with it; remember it now, before the tree comes apart.
	tree := descendants(st.PID)
	if err := stopProcess(st.PID, opts.Timeout); err != nil {
		return err
	}
	var left []string
	deadline := time.Now().Add(opts.Timeout)
	for _, pid := range tree {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			_ = killGroup(pid)
			time.Sleep(100 * time.Millisecond)
			if processAlive(pid) {
				left = append(left, fmt.Sprint(pid))
			}
		}
	}
	_ = os.Remove(filepath.Join(opts.StateDir, StateFile))
	if len(left) > 0 {
		return fmt.Errorf("stopped the sandbox (pid %d) but processes %s are still running", st.PID, strings.Join(left, ", "))
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Sandbox stopped (pid %d and %d child processes)\n", cs.SuccessIcon(), st.PID, len(tree))
	return nil
}
