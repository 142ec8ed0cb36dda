// Package ssh implements `ssmkit ssh`: an SSH connection to a managed node
// carried over Session Manager, for use as an OpenSSH ProxyCommand.
package ssh

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// SSHOptions are the inputs of `ssmkit ssh`.
type SSHOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is the target argument (ssh's %h) and --pick-one.
	Target cmdutil.Target
	// Port is the sshd port on the target (ssh's %p).
	Port int
	// Reason is --reason.
	Reason string
}

// NewCmdSSH returns the `ssh` command. runF replaces the run function in
// tests.
func NewCmdSSH(f *cmdutil.Factory, runF func(*SSHOptions) error) *cobra.Command {
	opts := &SSHOptions{IO: f.IOStreams, Clients: f.SessionClients}
	cmd := &cobra.Command{
		Use:   "ssh <target>",
		Short: "Carry an SSH connection over Session Manager (ProxyCommand)",
		Long: "Connect standard input and output to the target's sshd through AWS-StartSSHSession.\n" +
			"It is meant for OpenSSH's ProxyCommand; add to ~/.ssh/config:\n\n" +
			"  Host i-* mi-*\n" +
			"    ProxyCommand ssmkit ssh %h --port %p\n\n" +
			"Standard output carries only the SSH stream; messages go to standard error.",
		Example: "  ssh -o ProxyCommand='ssmkit ssh %h --port %p' ec2-user@i-0123456789abcdef0",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target.Arg = args[0]
			if opts.Port < 1 || opts.Port > 65535 {
				return cmdutil.FlagErrorf("--port %d is not a port number", opts.Port)
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return sshRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Port, "port", "p", 22, "The sshd port on the target")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

func sshRun(ctx context.Context, opts *SSHOptions) error {
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	req := session.SSHRequest(id, opts.Port)
	req.Reason = opts.Reason
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()
	return session.Stream(ctx, s, opts.IO.In, opts.IO.Out)
}
