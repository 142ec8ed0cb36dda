// Package forward implements `ssmkit forward`: forward a local TCP port
// to a port on, or reachable from, a managed node.
package forward

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// ForwardOptions are the inputs of `ssmkit forward`.
type ForwardOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is the target argument and --pick-one.
	Target cmdutil.Target
	// BindAddress is the local address to listen on (default 127.0.0.1).
	BindAddress string
	// LocalPort is the local port; 0 picks a free one.
	LocalPort int
	// RemotePort is the destination port.
	RemotePort int
	// Host is --host: a host reachable from the target; empty means the
	// target itself.
	Host string
	// JSON is --json (or --output json): print the local address and
	// session ID as JSON once ready.
	JSON bool
	// Reason is --reason.
	Reason string
}

// ready is what --json prints.
type ready struct {
	LocalAddress string `json:"local_address"`
	SessionID    string `json:"session_id"`
}

// NewCmdForward returns the `forward` command. runF replaces the run
// function in tests.
func NewCmdForward(f *cmdutil.Factory, runF func(*ForwardOptions) error) *cobra.Command {
	opts := &ForwardOptions{IO: f.IOStreams, Clients: f.SessionClients}
	cmd := &cobra.Command{
		Use:   "forward <target> [<bind-address>:]<local-port>:<remote-port>",
		Short: "Forward a local port to a port on or behind a managed node",
		Long: "Forward a local TCP port through Session Manager to a port on the managed node, or with\n" +
			"--host to a host reachable from it (a database endpoint, say).\n\n" +
			"A local port of 0 picks a free port; the chosen address is printed on stderr, or as JSON\n" +
			"on stdout with --json. Many connections can share one session. Press Ctrl-C to stop.",
		Example: "  ssmkit forward i-0123456789abcdef0 8080:80\n" +
			"  ssmkit forward bastion 0:5432 --host db.internal.example.com --json\n" +
			"  ssmkit forward web-1 0.0.0.0:9000:9000",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target.Arg = args[0]
			bind, local, remote, err := ParsePortSpec(args[1])
			if err != nil {
				return cmdutil.FlagErrorWrap(err)
			}
			opts.BindAddress, opts.LocalPort, opts.RemotePort = bind, local, remote
			if f.Options.JSON() {
				opts.JSON = true
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return forwardRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Host, "host", "", "Forward to this host as reached from the target (AWS-StartPortForwardingSessionToRemoteHost)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print {\"local_address\",\"session_id\"} as JSON once ready")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

// ParsePortSpec parses "[bind:]local:remote". The bind address defaults to
// 127.0.0.1; an IPv6 bind address goes in brackets.
func ParsePortSpec(spec string) (bind string, local, remote int, err error) {
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return "", 0, 0, fmt.Errorf("port spec %q is not <local-port>:<remote-port>", spec)
	}
	rest, remoteS := spec[:i], spec[i+1:]
	bind, localS := "127.0.0.1", rest
	if j := strings.LastIndex(rest, ":"); j >= 0 {
		bind, localS = strings.Trim(rest[:j], "[]"), rest[j+1:]
		if bind == "" {
			return "", 0, 0, fmt.Errorf("port spec %q has an empty bind address", spec)
		}
	}
	local, err = strconv.Atoi(localS)
	if err != nil || local < 0 || local > 65535 {
		return "", 0, 0, fmt.Errorf("local port %q in %q is not a number from 0 to 65535", localS, spec)
	}
	remote, err = strconv.Atoi(remoteS)
	if err != nil || remote < 1 || remote > 65535 {
		return "", 0, 0, fmt.Errorf("remote port %q in %q is not a number from 1 to 65535", remoteS, spec)
	}
	return bind, local, remote, nil
}

func forwardRun(ctx context.Context, opts *ForwardOptions) error {
	// Listen first: a busy port should fail before a session exists.
	bind := opts.BindAddress
	if bind == "" {
		bind = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(opts.LocalPort)))
	if err != nil {
		return fmt.Errorf("listening on %s port %d: %w", bind, opts.LocalPort, err)
	}
	defer ln.Close()
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	localPort := ln.Addr().(*net.TCPAddr).Port
	req := session.PortForwardRequest(id, opts.RemotePort, localPort, opts.Host)
	req.Reason = opts.Reason
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()

	dest := opts.Host
	if dest == "" {
		dest = s.Target()
	}
	var printErr error
	err = session.Forward(ctx, s, session.ForwardOptions{
		Listener: ln,
		Stderr:   opts.IO.ErrOut,
		OnReady: func(addr net.Addr) {
			fmt.Fprintf(opts.IO.ErrOut, "Forwarding %s → %s (%s)\n", addr, net.JoinHostPort(dest, strconv.Itoa(opts.RemotePort)), s.ID())
			if opts.JSON {
				printErr = cmdutil.PrintJSON(opts.IO, ready{LocalAddress: addr.String(), SessionID: s.ID()})
			}
		},
	})
	if err != nil {
		return err
	}
	return printErr
}
