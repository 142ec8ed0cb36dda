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

	// Target is the target argument and --pick-one.
	Target cmdutil.Target
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
	opts := &StartOptions{IO: f.IOStreams, Clients: f.SessionClients}
	var params []string
	cmd := &cobra.Command{
		Use:   "start [<target>]",
		Short: "Open an interactive shell on a managed node",
		Long: "Open an interactive shell on a managed node over Session Manager.\n\n" +
			cmdutil.TargetHelp + "\n\n" +
			"On a terminal, keystrokes (Ctrl-C included) go to the remote shell; type `exit` to end\n" +
			"the session.",
		Example: "  ssmkit start i-0123456789abcdef0\n" +
			"  ssmkit start web-1 --reason \"investigate ticket 42\"\n" +
			"  ssmkit start tag:role=bastion\n" +
			"  ssmkit start            # pick from a list\n" +
			"  ssmkit start i-0123456789abcdef0 --document MyShellDocument --parameter user=ops",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.Target.Arg = args[0]
			}
			p, err := session.ParseParameters(params)
			if err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			opts.Parameters = p
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Document, "document", "", "Session document to start (default "+ssmdoc.Shell+")")
	cmd.Flags().StringArrayVar(&params, "parameter", nil, "Document parameter as `key=value` (repeatable)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

func startRun(ctx context.Context, opts *StartOptions) error {
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	req := session.StartRequest{
		Target:       id,
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
