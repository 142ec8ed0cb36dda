// Package exec implements `ssmkit exec`: run one command on a managed
// node and exit with its status.
package exec

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// ExecOptions are the inputs of `ssmkit exec`.
type ExecOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is the target argument and --pick-one.
	Target cmdutil.Target
	// Command is the command line to run remotely.
	Command string
	// TTY is --tty: run on a pty with AWS-StartInteractiveCommand.
	TTY bool
	// Document is --document; empty picks the AWS document for the mode.
	Document string
	// Reason is --reason.
	Reason string
}

// NewCmdExec returns the `exec` command. runF replaces the run function in
// tests.
func NewCmdExec(f *cmdutil.Factory, runF func(*ExecOptions) error) *cobra.Command {
	opts := &ExecOptions{IO: f.IOStreams, Clients: f.SessionClients}
	cmd := &cobra.Command{
		Use:   "exec [<target>] -- <command> [args...]",
		Short: "Run a command on a managed node",
		Long: "Run a command on a managed node over Session Manager and exit with its exit status.\n\n" +
			"Without --tty the command runs without a terminal through AWS-StartNonInteractiveCommand\n" +
			"with separateOutputStream=true: its stdout and stderr arrive on ssmkit's stdout and\n" +
			"stderr, and its exit status becomes ssmkit's. Where the account's document does not take\n" +
			"separateOutputStream (StartSession answers InvalidParameters), ssmkit retries without it:\n" +
			"stdout and stderr then arrive merged on stdout, and the status comes back because the\n" +
			"command is run as `sh -c` that prints it on a marker line, which ssmkit removes (--debug\n" +
			"says so). A --document of your own must set separateOutputStream for the status.\n\n" +
			"With --tty the command runs on a terminal through AWS-StartInteractiveCommand, for\n" +
			"programs such as top or vim; Session Manager does not report the status then.\n\n" +
			"Several arguments reach the remote program as the same words (the agent runs the command\n" +
			"without a shell). A single argument may hold a whole shell command line: when it uses\n" +
			"shell syntax (a pipe, a redirection, $VAR…) ssmkit runs it with `sh -c`, as ssh would.\n\n" + cmdutil.TargetHelp,
		Example: "  ssmkit exec i-0123456789abcdef0 -- uptime\n" +
			"  ssmkit exec web-1 -- 'journalctl -u nginx | tail -n 50'\n" +
			"  ssmkit exec web-1 --tty -- top\n" +
			"  ssmkit exec 'web-*' --pick-one -- hostname\n" +
			"  ssmkit exec -- uptime          # pick the node from a list",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch dash := cmd.ArgsLenAtDash(); {
			case dash > 1:
				return cmdutil.FlagErrorf("put the command after --: ssmkit exec <target> -- <command>")
			case dash == 0: // no target: pick one
				opts.Target.Arg = ""
			case len(args) < 2:
				return cmdutil.FlagErrorf("no command given: ssmkit exec <target> -- <command>")
			default:
				opts.Target.Arg, args = args[0], args[1:]
			}
			opts.Command = JoinCommand(args)
			if strings.TrimSpace(opts.Command) == "" {
				return cmdutil.FlagErrorf("the command is empty")
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return execRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.TTY, "tty", "t", false, "Run the command on a terminal (AWS-StartInteractiveCommand)")
	cmd.Flags().StringVar(&opts.Document, "document", "", "Session document to run the command with")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

func execRun(ctx context.Context, opts *ExecOptions) error {
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	req := session.CommandRequest(id, opts.Command, opts.TTY, opts.Document)
	req.Reason = opts.Reason
	stdout := opts.IO.Out
	var status *session.StatusWriter
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if rejectsSeparateOutput(err, req) {
		// This account's AWS-StartNonInteractiveCommand takes only
		// "command": output comes back merged and without the exit code
		// (§11.25), so the remote shell prints the status itself.
		wrapped, marker := session.StatusCommand(opts.Command)
		logf(opts, "StartSession refused separateOutputStream (%v); retrying without it: stdout and stderr come back merged, and the exit status on a marker line printed by `sh -c` after the command", err)
		req = session.CommandRequest(id, wrapped, false, opts.Document)
		delete(req.Parameters, session.ParamSeparateOutputStream)
		req.Reason = opts.Reason
		status = session.NewStatusWriter(stdout, marker)
		stdout = status
		s, err = session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	}
	if err != nil {
		return err
	}
	defer s.Close()
	if opts.TTY {
		in, _ := opts.IO.In.(*os.File)
		return session.RunInteractive(ctx, s, session.ShellIO{
			Stdin:  opts.IO.In,
			Stdout: opts.IO.Out,
			Stderr: opts.IO.ErrOut,
		}, in, opts.IO.IsStdinTTY())
	}
	code, err := session.RunCommand(ctx, s, session.CommandIO{Stdout: stdout, Stderr: opts.IO.ErrOut})
	if status != nil {
		c, cerr := status.Close()
		if err == nil {
			code, err = c, cerr
		}
	}
	if err != nil {
		return err
	}
	if code == session.NoExitCode {
		logf(opts, "the session reported no exit status (the document does not set separateOutputStream)")
		return nil
	}
	if code != 0 {
		return cmdutil.ExitCodeError(code)
	}
	return nil
}

// rejectsSeparateOutput reports whether StartSession refused req because
// the document does not declare separateOutputStream, as the AWS-owned
// AWS-StartNonInteractiveCommand may not.
func rejectsSeparateOutput(err error, req session.StartRequest) bool {
	var ae smithy.APIError
	_, asked := req.Parameters[session.ParamSeparateOutputStream]
	return asked && errors.As(err, &ae) && ae.ErrorCode() == "InvalidParameters"
}

func logf(opts *ExecOptions, format string, args ...any) {
	if opts.Logf != nil {
		opts.Logf(format, args...)
	}
}

// JoinCommand turns arguments into the command the node runs. The SSM
// Agent splits a NonInteractiveCommands command line shell-style and runs it
// without a shell, so several arguments are quoted where needed and reach
// the program as the same words, and a single argument that uses shell
// syntax (a pipe, a redirection, a variable…) is handed to "sh -c", as ssh
// would hand it to the remote shell. A single argument of plain words is
// sent as is.
func JoinCommand(args []string) string {
	if len(args) == 1 {
		if strings.ContainsAny(args[0], shellSyntax) {
			return "sh -c " + shellQuote(args[0])
		}
		return args[0]
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// shellSyntax holds the characters that make a command line mean something
// different to a POSIX shell than to the agent's plain word splitting.
const shellSyntax = "|&;<>()$`\\\"'*?[]#~=\n"

// shellQuote quotes s for a POSIX shell unless it is plainly safe.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
