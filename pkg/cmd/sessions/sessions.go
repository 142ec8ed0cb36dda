// Package sessions implements `ssmkit sessions`: list active and past
// Session Manager sessions, and terminate sessions.
package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sessionlist"
)

// SSMAPI is the part of the SSM client these commands use.
type SSMAPI interface {
	DescribeSessions(ctx context.Context, in *ssm.DescribeSessionsInput, optFns ...func(*ssm.Options)) (*ssm.DescribeSessionsOutput, error)
	TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, optFns ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

// NewCmdSessions returns the `sessions` command group.
func NewCmdSessions(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions <command>",
		Short: "List and terminate Session Manager sessions",
	}
	cmd.AddCommand(NewCmdList(f, nil))
	cmd.AddCommand(NewCmdTerminate(f, nil))
	return cmd
}

// clientLoader builds the SSM client from the Factory's configuration.
func clientLoader(f *cmdutil.Factory) func(ctx context.Context) (SSMAPI, error) {
	return func(ctx context.Context) (SSMAPI, error) {
		cfg, err := f.AWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		return awsapi.NewSSM(cfg), nil
	}
}

// ListOptions are the inputs of `ssmkit sessions ls`.
type ListOptions struct {
	IO     *iostreams.IOStreams
	Client func(ctx context.Context) (SSMAPI, error)
	// History is --history: ended sessions instead of active ones.
	History bool
	// Target and Owner filter (--target, --owner).
	Target, Owner string
	// JSON is --json or --output json.
	JSON bool
}

// NewCmdList returns `sessions ls`. runF replaces the run function in tests.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List active sessions, or ended ones with --history",
		Example: "  ssmkit sessions ls\n" +
			"  ssmkit sessions ls --history --target i-0123456789abcdef0\n" +
			"  ssmkit sessions ls --owner arn:aws:sts::111122223333:assumed-role/Admin/alice --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NonEmptyFlags(cmd, "target", "owner"); err != nil {
				return err
			}
			if f.Options.JSON() {
				opts.JSON = true
			}
			if opts.Client == nil {
				opts.Client = clientLoader(f)
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.History, "history", false, "List ended sessions (the last 30 days) instead of active ones")
	cmd.Flags().StringVar(&opts.Target, "target", "", "Only sessions on this instance or managed node ID")
	cmd.Flags().StringVar(&opts.Owner, "owner", "", "Only sessions started by this IAM ARN")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print JSON")
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	c, err := opts.Client(ctx)
	if err != nil {
		return err
	}
	state := ssmtypes.SessionStateActive
	if opts.History {
		state = ssmtypes.SessionStateHistory
	}
	var filters []ssmtypes.SessionFilter
	if opts.Target != "" {
		filters = append(filters, ssmtypes.SessionFilter{Key: ssmtypes.SessionFilterKeyTargetId, Value: aws.String(opts.Target)})
	}
	if opts.Owner != "" {
		filters = append(filters, ssmtypes.SessionFilter{Key: ssmtypes.SessionFilterKeyOwner, Value: aws.String(opts.Owner)})
	}
	list, err := sessionlist.Describe(ctx, c, state, filters...)
	if err != nil {
		return err
	}
	if opts.JSON {
		if list == nil {
			list = []sessionlist.Session{}
		}
		return cmdutil.PrintJSON(opts.IO, list)
	}
	if len(list) == 0 {
		what := "active sessions"
		if opts.History {
			what = "ended sessions"
		}
		fmt.Fprintf(opts.IO.ErrOut, "No %s\n", what)
		return nil
	}
	cs := opts.IO.ColorScheme()
	tp := cmdutil.NewTablePrinter(opts.IO)
	if opts.History {
		tp.SetHeader("ID", "TARGET", "STATUS", "OWNER", "STARTED", "ENDED", "REASON")
	} else {
		tp.SetHeader("ID", "TARGET", "STATUS", "OWNER", "STARTED", "REASON")
	}
	for _, s := range list {
		status := s.Status
		if status == string(ssmtypes.SessionStatusConnected) {
			status = cs.Green(status)
		}
		row := []string{s.SessionID, s.Target, status, s.Owner, when(s.StartDate)}
		if opts.History {
			row = append(row, when(s.EndDate))
		}
		tp.AddRow(append(row, s.Reason)...)
	}
	return tp.Render()
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// TerminateOptions are the inputs of `ssmkit sessions terminate`.
type TerminateOptions struct {
	IO     *iostreams.IOStreams
	Client func(ctx context.Context) (SSMAPI, error)
	// IDs are the sessions to end.
	IDs []string
	// JSON is --json or --output json.
	JSON bool
}

// NewCmdTerminate returns `sessions terminate`. runF replaces the run
// function in tests.
func NewCmdTerminate(f *cmdutil.Factory, runF func(*TerminateOptions) error) *cobra.Command {
	opts := &TerminateOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "terminate <session-id>...",
		Short: "End sessions and close their connections",
		Long: "End each session: its connection closes and it cannot be resumed. Every ID is tried;\n" +
			"the command exits 1 if any could not be ended.",
		Example: "  ssmkit sessions terminate alice-0a1b2c3d4e5f67890\n" +
			"  ssmkit sessions ls --json | jq -r '.[].session_id' | xargs ssmkit sessions terminate",
		Args: cmdutil.NonEmptyArgs(cobra.MinimumNArgs(1), "a session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = args
			if f.Options.JSON() {
				opts.JSON = true
			}
			if opts.Client == nil {
				opts.Client = clientLoader(f)
			}
			if runF != nil {
				return runF(opts)
			}
			return terminateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print one JSON result per session")
	return cmd
}

// terminated is one --json result of terminate.
type terminated struct {
	SessionID  string `json:"session_id"`
	Terminated bool   `json:"terminated"`
	Error      string `json:"error,omitempty"`
	Hint       string `json:"hint,omitempty"`
}

func terminateRun(ctx context.Context, opts *TerminateOptions) error {
	c, err := opts.Client(ctx)
	if err != nil {
		return err
	}
	// One ID behaves like any command: the error and its hint are printed
	// by the root command.
	if len(opts.IDs) == 1 && !opts.JSON {
		id := opts.IDs[0]
		if _, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)}); err != nil {
			return fmt.Errorf("terminating %s: %w", id, err)
		}
		fmt.Fprintf(opts.IO.ErrOut, "%s Terminated %s\n", opts.IO.ColorScheme().SuccessIcon(), id)
		return nil
	}
	cs := opts.IO.ColorScheme()
	results := make([]terminated, 0, len(opts.IDs))
	failed := false
	for _, id := range opts.IDs {
		_, err := c.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)})
		r := terminated{SessionID: id, Terminated: err == nil}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed = true
			r.Error, r.Hint = awsapi.Summarize(err), awsapi.Hint(err)
			if !opts.JSON {
				fmt.Fprintf(opts.IO.ErrOut, "%s %s: %s\n", cs.FailureIcon(), id, r.Error)
				if r.Hint != "" {
					fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", r.Hint)
				}
			}
		} else if !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "%s Terminated %s\n", cs.SuccessIcon(), id)
		}
		results = append(results, r)
	}
	if opts.JSON {
		if err := cmdutil.PrintJSON(opts.IO, results); err != nil {
			return err
		}
	}
	if failed {
		return cmdutil.SilentError
	}
	return nil
}
