// Package ssh implements `ssmkit ssh`: SSH to a managed node over Session
// Manager — running ssh with ssmkit as its ProxyCommand, or being that
// ProxyCommand — and `ssmkit ssh config`, the ~/.ssh/config block that
// makes ssh, scp, rsync and git reach nodes by ID.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

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
	// ProxyCommand returns the ProxyCommand that carries ssh through
	// ssmkit (absolute path, global flags).
	ProxyCommand func() (string, error)
	// RunSSH runs the ssh client with args and returns its exit status.
	RunSSH func(args []string) (int, error)

	// Target is the target argument (ssh's %h) and --pick-one.
	Target cmdutil.Target
	// User is the login user (user@target or -l): set, ssmkit runs ssh.
	User string
	// Port is the sshd port on the target (ssh's %p).
	Port int
	// SSHArgs are passed to ssh after the destination (options, command).
	SSHArgs []string
	// Reason is --reason.
	Reason string
}

// NewCmdSSH returns the `ssh` command. runF replaces the run function in
// tests.
func NewCmdSSH(f *cmdutil.Factory, runF func(*SSHOptions) error) *cobra.Command {
	opts := &SSHOptions{IO: f.IOStreams, Clients: f.SessionClients, RunSSH: runSSH}
	cmd := &cobra.Command{
		Use:   "ssh [<user>@]<target> [-- <ssh arguments>...]",
		Short: "SSH to a managed node over Session Manager, or carry ssh's connection (ProxyCommand)",
		Long: "With a user (user@target or -l user), run ssh to the node with ssmkit as its\n" +
			"ProxyCommand; arguments after -- go to ssh (options, a remote command).\n\n" +
			"Without a user, connect standard input and output to the node's sshd through\n" +
			"AWS-StartSSHSession: what OpenSSH's ProxyCommand runs. `ssmkit ssh config --write` adds\n" +
			"to ~/.ssh/config a block that makes ssh, scp, rsync and git reach i-* and mi-* hosts so:\n\n" +
			"  Host i-* mi-*\n" +
			"    ProxyCommand /path/to/ssmkit ssh %h --port %p\n\n" +
			"Standard output carries only the SSH stream; messages go to standard error.\n\n" +
			cmdutil.TargetHelp,
		Example: "  ssmkit ssh ec2-user@web-1\n" +
			"  ssmkit ssh -l ubuntu i-0123456789abcdef0 -- -i ~/.ssh/id_ed25519 uptime\n" +
			"  ssh -o ProxyCommand='ssmkit ssh %h --port %p' ec2-user@i-0123456789abcdef0\n" +
			"  ssmkit ssh config --write",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash > 1 || (dash < 0 && len(args) > 1) {
				return cmdutil.FlagErrorf("put ssh's arguments after --: ssmkit ssh user@target -- <ssh arguments>")
			}
			target := args[0]
			if dash == 1 {
				opts.SSHArgs = args[1:]
			}
			if user, host, ok := strings.Cut(target, "@"); ok {
				if user == "" || host == "" {
					return cmdutil.FlagErrorf("%q is not user@target", target)
				}
				if opts.User != "" && opts.User != user {
					return cmdutil.FlagErrorf("two users given: -l %s and %s@", opts.User, user)
				}
				opts.User, target = user, host
			}
			if opts.User == "" && len(opts.SSHArgs) > 0 {
				return cmdutil.FlagErrorf("ssh arguments need a user: ssmkit ssh user@target -- <ssh arguments>")
			}
			opts.Target.Arg = target
			if opts.Port < 1 || opts.Port > 65535 {
				return cmdutil.FlagErrorf("--port %d is not a port number", opts.Port)
			}
			if opts.ProxyCommand == nil {
				opts.ProxyCommand = func() (string, error) { return ProxyCommand(f.Options, os.Executable) }
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return sshRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Port, "port", "p", 22, "The sshd port on the target")
	cmd.Flags().StringVarP(&opts.User, "login", "l", "", "Log in as this user: run ssh with ssmkit as its ProxyCommand")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	cmd.AddCommand(NewCmdConfig(f, nil))
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
	if opts.User != "" {
		return runClient(opts, id)
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

// runClient runs ssh to user@id with ssmkit as its ProxyCommand and exits
// with ssh's status.
func runClient(opts *SSHOptions, id string) error {
	proxy, err := opts.ProxyCommand()
	if err != nil {
		return err
	}
	if opts.Reason != "" {
		proxy += " --reason " + shellQuote(opts.Reason)
	}
	args := []string{"-o", "ProxyCommand=" + proxy}
	if opts.Port != 22 {
		args = append(args, "-p", strconv.Itoa(opts.Port))
	}
	args = append(args, opts.User+"@"+id)
	args = append(args, opts.SSHArgs...)
	if opts.Logf != nil {
		opts.Logf("running ssh %s", strings.Join(args, " "))
	}
	code, err := opts.RunSSH(args)
	if err != nil {
		return err
	}
	if code != 0 {
		return cmdutil.ExitCodeError(code)
	}
	return nil
}

// runSSH runs the ssh on PATH on the process's terminal. ssh handles the
// keyboard itself; ssmkit waits (a Ctrl-C that reaches both is ssh's to
// act on).
func runSSH(args []string) (int, error) {
	path, err := exec.LookPath("ssh")
	if err != nil {
		return 0, errors.New("ssh is not installed: install OpenSSH's client (apt-get install openssh-client, or your system's package), or use ssmkit ssh without a user as a ProxyCommand")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signal.Ignore(os.Interrupt)
	defer signal.Reset(os.Interrupt)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("running ssh: %w", err)
	}
	return 0, nil
}

// ProxyCommand returns the ProxyCommand line for ssh: ssmkit by absolute
// path, in ProxyCommand mode, with the global flags that shape AWS access.
func ProxyCommand(o cmdutil.GlobalOptions, executable func() (string, error)) (string, error) {
	exe, err := executable()
	if err != nil {
		return "", fmt.Errorf("finding the ssmkit executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	// ssh expands %-tokens in ProxyCommand: a literal % is %%.
	literal := func(s string) string { return strings.ReplaceAll(shellQuote(s), "%", "%%") }
	parts := []string{literal(exe)}
	for _, f := range []struct{ name, value string }{
		{"--profile", o.Profile}, {"--region", o.Region}, {"--endpoint-url", o.EndpointURL},
	} {
		if f.value != "" {
			parts = append(parts, f.name, literal(f.value))
		}
	}
	parts = append(parts, "ssh", "%h", "--port", "%p")
	return strings.Join(parts, " "), nil
}

// shellQuote quotes s for the shell ssh runs ProxyCommand with, unless it
// is plainly safe.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
