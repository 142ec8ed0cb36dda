package root

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/internal/profile"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
	pluginCmd "github.com/ssmkit/ssmkit/pkg/cmd/plugin"
	versionCmd "github.com/ssmkit/ssmkit/pkg/cmd/version"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// Exit codes. Commands choose others only through cmdutil.ExitCodeError.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitInterrupt = 130 // 128 + SIGINT, what shells report for Ctrl-C
)

// Main runs ssmkit with the process's arguments and streams and returns
// the exit code.
func Main() int {
	f := NewFactory(iostreams.System(), os.Getenv)
	defer profile.Start(os.Getenv, f.IOStreams.ErrOut)()
	// SIGHUP too: OpenSSH ends its ProxyCommand (ssmkit ssh) with it, and
	// the session must be terminated rather than left to idle out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		// After the first signal cancels ctx, restore default handling so a
		// second Ctrl-C kills a command that ignores its context.
		<-ctx.Done()
		stop()
	}()
	return Execute(ctx, f, NewCmdRoot(f), Args(os.Args))
}

// Args returns the command-line arguments ssmkit runs with: argv without
// the program name, or, when ssmkit was started under the name
// session-manager-plugin (the link `ssmkit plugin install` makes), the
// same arguments for `ssmkit plugin`.
func Args(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	name := strings.TrimSuffix(filepath.Base(argv[0]), ".exe")
	if name == pluginCmd.Name {
		return append([]string{"plugin"}, argv[1:]...)
	}
	return argv[1:]
}

// NewFactory returns the Factory for a real run. getenv supplies the
// credentials to redact from error output (AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN); the AWS configuration itself comes from the SDK's
// standard loader, which reads the process environment.
func NewFactory(ios *iostreams.IOStreams, getenv func(string) string) *cmdutil.Factory {
	f := &cmdutil.Factory{
		AppName:    "ssmkit",
		AppVersion: versionCmd.Current().Version,
		IOStreams:  ios,
		Redactor:   &cmdutil.Redactor{},
	}
	f.Redactor.Add(getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"), getenv("AWS_SECURITY_TOKEN"))
	f.AWSConfig = cmdutil.MemoizeAWSConfig(func(ctx context.Context) (aws.Config, error) {
		o := f.Options // read at call time: flags are parsed by then
		return awsapi.LoadConfig(ctx, awsapi.Options{
			Profile:     o.Profile,
			Region:      o.Region,
			EndpointURL: o.EndpointURL,
			Debug:       o.Debug,
			DebugOut:    ios.ErrOut,
			OnCredentials: func(c aws.Credentials) {
				f.Redactor.Add(c.SecretAccessKey, c.SessionToken)
			},
		})
	})
	f.SessionClients = cmdutil.SessionClientsLoader(f.AWSConfig)
	return f
}

// Execute runs cmd with args and turns the outcome into an exit code:
//
//	0    success
//	1    runtime error: "error: <one line>" and maybe "hint: <fix>" on stderr;
//	     cmdutil.SilentError exits 1 and prints nothing
//	2    usage error: unknown command or flag, bad flag value, wrong number
//	     of arguments, cmdutil.FlagError; followed by a pointer to --help
//	n    cmdutil.ExitCodeError(n), printing nothing (codes outside 0–255 exit 1)
//	130  interrupted (SIGINT/SIGTERM cancelled ctx)
func Execute(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	// Create cobra's lazy help and completion commands now, so that the
	// argument validators of every command, theirs included, are wrapped.
	cmd.InitDefaultHelpCmd()
	cmd.InitDefaultCompletionCmd(args...)
	markArgErrorsAsUsage(cmd)

	c, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if c == nil {
		c = cmd
	}
	return handleError(ctx, f, c, err)
}

func handleError(ctx context.Context, f *cmdutil.Factory, c *cobra.Command, err error) int {
	stderr := f.IOStreams.ErrOut
	if errors.Is(err, cmdutil.SilentError) {
		return exitError
	}
	var exitCode cmdutil.ExitCodeError
	if errors.As(err, &exitCode) {
		if exitCode < 0 || exitCode > 255 {
			return exitError
		}
		return int(exitCode)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitInterrupt
	}
	if isUsageError(err) {
		fmt.Fprintf(stderr, "error: %s\n", f.Redactor.Redact(usageMessage(err)))
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", c.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(stderr, "error: %s\n", f.Redactor.Redact(awsapi.Summarize(err)))
	if hint := awsapi.Hint(err); hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", f.Redactor.Redact(hint))
	}
	return exitError
}

// isUsageError recognises usage errors. Cobra reports an unknown command
// at the root only as text, so that one is matched by its message.
func isUsageError(err error) bool {
	var flagErr *cmdutil.FlagError
	return errors.As(err, &flagErr) || strings.HasPrefix(err.Error(), "unknown command ")
}

// suggestionsRE matches cobra's multi-line "Did you mean this?" block.
var suggestionsRE = regexp.MustCompile(`\s*Did you mean this\?\s*((?:\S+\s*)+)$`)

// usageMessage renders a usage error on one line, turning cobra's
// suggestion block into `; did you mean "start"?`.
func usageMessage(err error) string {
	msg := err.Error()
	if m := suggestionsRE.FindStringSubmatchIndex(msg); m != nil {
		names := strings.Fields(msg[m[2]:m[3]])
		for i, n := range names {
			names[i] = fmt.Sprintf("%q", n)
		}
		msg = msg[:m[0]] + "; did you mean " + strings.Join(names, " or ") + "?"
	}
	return awsapi.Summarize(errors.New(msg))
}

// markArgErrorsAsUsage wraps the positional-argument validator of every
// command so that cobra.ExactArgs and friends exit 2 like flag errors, and
// command authors do not need ssmkit-specific validators.
//
// Cobra checks for unknown subcommands only at the root: `ssmkit prefs
// bogus` would print the help of `prefs` and exit 0. Group commands
// (subcommands, no run function of their own) therefore get one that
// reports an unknown subcommand as a usage error and otherwise shows help.
func markArgErrorsAsUsage(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			return cmdutil.FlagErrorWrap(validate(c, args))
		}
	}
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.FlagErrorf("unknown command %q for %q", args[0], c.CommandPath())
			}
			return c.Help()
		}
	}
	for _, sub := range cmd.Commands() {
		markArgErrorsAsUsage(sub)
	}
}
