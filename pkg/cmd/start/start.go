// Package start implements `ssmkit start`: an interactive shell on a
// managed node.
package start

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// StartOptions are the inputs of `ssmkit start`.
type StartOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is an instance ID, managed node ID or Name tag.
	Target string
	// Document is --document; empty means the default shell document.
	Document string
	// Parameters are the --parameter key=value pairs.
	Parameters map[string][]string
	// Reason is --reason.
	Reason string
}

// NewCmdStart returns the `start` command. runF replaces the run function
// in tests.
func NewCmdStart(f *cmdutil.Factory, runF func(*StartOptions) error) *cobra.Command {
	opts := &StartOptions{IO: f.IOStreams}
	var params []string
	cmd := &cobra.Command{
		Use:   "start <target>",
		Short: "Open an interactive shell on a managed node",
		Long: "Open an interactive shell on a managed node over Session Manager.\n\n" +
			"The target is an instance ID (i-…), a managed node ID (mi-…) or the Name tag of one\n" +
			"running EC2 instance. On a terminal, keystrokes (Ctrl-C included) go to the remote\n" +
			"shell; type `exit` to end the session.",
		Example: "  ssmkit start i-0123456789abcdef0\n" +
			"  ssmkit start web-1 --reason \"investigate ticket 42\"\n" +
			"  ssmkit start i-0123456789abcdef0 --document MyShellDocument --parameter user=ops",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			p, err := session.ParseParameters(params)
			if err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			opts.Parameters = p
			if opts.Clients == nil {
				opts.Clients = session.ClientsLoader(f.AWSConfig)
			}
			if f.Options.Debug {
				opts.Logf = session.DebugLogf(opts.IO.ErrOut)
			}
			if runF != nil {
				return runF(opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Document, "document", "", "Session document to start (default "+ssmdoc.Shell+")")
	cmd.Flags().StringArrayVar(&params, "parameter", nil, "Document parameter as `key=value` (repeatable)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	return cmd
}

func startRun(ctx context.Context, opts *StartOptions) error {
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	req := session.StartRequest{
		Target:       opts.Target,
		DocumentName: opts.Document,
		Parameters:   opts.Parameters,
		Reason:       opts.Reason,
	}
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(opts.IO.ErrOut, "Starting session with SessionId: %s\n", s.ID())
	in, _ := opts.IO.In.(*os.File)
	return session.RunInteractive(ctx, s, session.ShellIO{
		Stdin:  opts.IO.In,
		Stdout: opts.IO.Out,
		Stderr: opts.IO.ErrOut,
	}, in, opts.IO.IsStdinTTY())
}
