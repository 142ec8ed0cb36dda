// Package logs implements `ssmkit logs <session-id>`: print a session's
// transcript from where the Session Manager preferences sent it
// (CloudWatch Logs or S3).
package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/sessionlist"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// SSMAPI is the part of the SSM client `logs` uses: the session, then the
// preferences document.
type SSMAPI interface {
	sessionlist.API
	prefs.SSMAPI
}

// LogsAPI is the part of the CloudWatch Logs client `logs` uses.
type LogsAPI interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// S3API is the part of the S3 client `logs` uses.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Clients are the AWS APIs `logs` uses.
type Clients struct {
	SSM  SSMAPI
	Logs LogsAPI
	S3   S3API
}

// Sources for --source.
const (
	SourceAuto       = "auto"
	SourceCloudWatch = "cloudwatch"
	SourceS3         = "s3"
)

// ErrLoggingOff means the preferences named no transcript destination.
var ErrLoggingOff = errors.New("logging was off")

// LogsOptions are the inputs of `ssmkit logs`.
type LogsOptions struct {
	IO      *iostreams.IOStreams
	Clients func(ctx context.Context) (Clients, error)

	// SessionID is the session whose transcript to print.
	SessionID string
	// Follow is --follow: keep printing while the session is active.
	Follow bool
	// Source is --source: auto (CloudWatch, then S3), cloudwatch or s3.
	Source string
	// Document is --document: the preferences document.
	Document string
	// PollInterval is how often --follow polls (default 2s).
	PollInterval time.Duration
}

// NewCmdLogs returns the `logs` command. runF replaces the run function in
// tests.
func NewCmdLogs(f *cmdutil.Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IOStreams, PollInterval: 2 * time.Second}
	cmd := &cobra.Command{
		Use:   "logs <session-id>",
		Short: "Print a session's transcript from CloudWatch Logs or S3",
		Long: "Find the session, read the Session Manager preferences to learn where transcripts go,\n" +
			"and print the session's transcript: the log stream named after the session in the\n" +
			"CloudWatch Logs group, or <prefix>/<session-id>.log in the S3 bucket. Encrypted objects\n" +
			"and log groups are decrypted by AWS for callers allowed to use the key.\n\n" +
			"Transcripts exist only if logging was on when the session ran; ssmkit says so when the\n" +
			"preferences name no destination.",
		Example: "  ssmkit logs alice-0a1b2c3d4e5f67890\n" +
			"  ssmkit logs alice-0a1b2c3d4e5f67890 --follow\n" +
			"  ssmkit logs alice-0a1b2c3d4e5f67890 --source s3 > transcript.log",
		Args: cmdutil.NonEmptyArgs(cobra.ExactArgs(1), "the session ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.SessionID = args[0]
			switch opts.Source {
			case SourceAuto, SourceCloudWatch, SourceS3:
			default:
				return cmdutil.FlagErrorf("--source must be auto, cloudwatch or s3, got %q", opts.Source)
			}
			if opts.Document == "" {
				return cmdutil.FlagErrorf("--document must name a document")
			}
			if opts.Clients == nil {
				opts.Clients = func(ctx context.Context) (Clients, error) {
					cfg, err := f.AWSConfig(ctx)
					if err != nil {
						return Clients{}, err
					}
					return Clients{SSM: awsapi.NewSSM(cfg), Logs: awsapi.NewCloudWatchLogs(cfg), S3: awsapi.NewS3(cfg)}, nil
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return logsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "Keep printing new output while the session is active")
	cmd.Flags().StringVar(&opts.Source, "source", SourceAuto, "Where to read: auto (CloudWatch Logs, then S3), cloudwatch or s3")
	cmd.Flags().StringVar(&opts.Document, "document", ssmdoc.Shell, "Preferences document that says where transcripts go")
	return cmd
}

// destination is where a session's transcript went.
type destination struct {
	logGroup string
	bucket   string
	key      string
}

func logsRun(ctx context.Context, opts *LogsOptions) error {
	c, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	sess, active, err := sessionlist.Find(ctx, c.SSM, opts.SessionID)
	if err != nil {
		return err
	}
	dest, err := readDestination(ctx, c.SSM, opts.Document, sess)
	if err != nil {
		return err
	}
	useCW := dest.logGroup != "" && opts.Source != SourceS3
	useS3 := dest.bucket != "" && opts.Source != SourceCloudWatch
	if !useCW && !useS3 {
		if dest.logGroup == "" && dest.bucket == "" {
			return fmt.Errorf("%w for session %s: %s names no S3 bucket or CloudWatch log group, so no transcript was kept (turn logging on with `ssmkit prefs set --cw-log-group NAME` or `--s3-bucket NAME`)",
				ErrLoggingOff, opts.SessionID, opts.Document)
		}
		return fmt.Errorf("%w for session %s in %s: %s sends transcripts only to %s", ErrLoggingOff, opts.SessionID, opts.Source, opts.Document, dest.describe())
	}
	fmt.Fprintf(opts.IO.ErrOut, "Session %s on %s (%s, started %s)\n", sess.SessionID, sess.Target, sess.Status, when(sess.StartDate))
	if useCW {
		found, err := printCloudWatch(ctx, c, opts, dest.logGroup, active)
		if err != nil || found || !useS3 {
			if err == nil && !found {
				return noTranscript(opts.SessionID, active, fmt.Sprintf("log group %s (stream %s)", dest.logGroup, opts.SessionID))
			}
			return err
		}
	}
	return printS3(ctx, c, opts, dest, active)
}

func (d destination) describe() string {
	var parts []string
	if d.logGroup != "" {
		parts = append(parts, "CloudWatch Logs group "+d.logGroup)
	}
	if d.bucket != "" {
		parts = append(parts, "s3://"+d.bucket+"/"+d.key)
	}
	return strings.Join(parts, " and ")
}

func noTranscript(id string, active bool, where string) error {
	if active {
		return fmt.Errorf("no transcript of session %s in %s yet: the session is still active and the transcript is written when it ends (or use --follow)", id, where)
	}
	return fmt.Errorf("no transcript of session %s in %s: logging was probably off (or pointed elsewhere) when the session ran", id, where)
}

// readDestination reads the preferences and, when the session ran a
// document of its own that names a destination, that document's inputs
// (they override the preferences, as Session Manager does).
func readDestination(ctx context.Context, c prefs.SSMAPI, document string, s sessionlist.Session) (destination, error) {
	snap, err := prefs.Store{SSM: c, Name: document}.Load(ctx)
	if err != nil {
		return destination{}, err
	}
	doc := snap.Doc
	if !snap.Exists {
		doc = &prefs.Document{} // never saved: logging is off
	}
	get := func(key string) string { return doc.String(key) }
	if s.DocumentName != "" && s.DocumentName != document && !strings.HasPrefix(s.DocumentName, "AWS-") {
		own, err := prefs.Store{SSM: c, Name: s.DocumentName}.Load(ctx)
		if err == nil && own.Exists {
			get = func(key string) string {
				if v := own.Doc.String(key); v != "" {
					return v
				}
				return doc.String(key)
			}
		}
	}
	d := destination{logGroup: get(prefs.KeyLogGroup), bucket: get(prefs.KeyS3Bucket)}
	d.key = path.Join(get(prefs.KeyS3Prefix), s.SessionID+".log")
	return d, nil
}

// printCloudWatch prints the session's stream. It reports whether the
// stream exists. With Follow it keeps polling while the session is active.
func printCloudWatch(ctx context.Context, c Clients, opts *LogsOptions, group string, active bool) (bool, error) {
	in := &cloudwatchlogs.GetLogEventsInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String(opts.SessionID), StartFromHead: aws.Bool(true),
	}
	found := false
	for {
		// Drain what is there now; the next drain goes on from the last
		// forward token (the stream's end repeats it).
		pages := cloudwatchlogs.NewGetLogEventsPaginator(c.Logs, in, func(o *cloudwatchlogs.GetLogEventsPaginatorOptions) {
			o.StopOnDuplicateToken = true
		})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if isCode(err, "ResourceNotFoundException") {
				break
			}
			if err != nil {
				return found, fmt.Errorf("reading log stream %s in %s: %w", opts.SessionID, group, err)
			}
			found = true
			for _, e := range out.Events {
				if _, err := io.WriteString(opts.IO.Out, eventText(aws.ToString(e.Message))); err != nil {
					return found, err
				}
			}
			if out.NextForwardToken != nil {
				in.NextToken = out.NextForwardToken
			}
		}
		if !opts.Follow || !active {
			return found, nil
		}
		select {
		case <-ctx.Done():
			return found, ctx.Err()
		case <-time.After(opts.PollInterval):
		}
		// One last drain after the session ends: the agent flushes then.
		var err error
		if active, err = sessionlist.Active(ctx, c.SSM, opts.SessionID); err != nil {
			return found, err
		}
	}
}

// eventText renders one log event. The real agent streams JSON events
// whose sessionData holds the lines; other events are raw output.
func eventText(msg string) string {
	if strings.HasPrefix(msg, "{") {
		var ev struct {
			SessionData []string `json:"sessionData"`
		}
		if json.Unmarshal([]byte(msg), &ev) == nil && ev.SessionData != nil {
			return strings.Join(ev.SessionData, "\n") + "\n"
		}
	}
	return msg
}

// printS3 prints the transcript object. S3 decrypts SSE-S3 and SSE-KMS
// objects for callers allowed to use the key. With Follow it waits for the
// session to end, since the object is written then.
func printS3(ctx context.Context, c Clients, opts *LogsOptions, d destination, active bool) error {
	where := "s3://" + d.bucket + "/" + d.key
	for {
		out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(d.key)})
		if err == nil {
			defer out.Body.Close()
			if _, err := io.Copy(opts.IO.Out, out.Body); err != nil {
				return fmt.Errorf("reading %s: %w", where, err)
			}
			return nil
		}
		if !isCode(err, "NoSuchKey") && !isCode(err, "NotFound") {
			return fmt.Errorf("reading %s: %w", where, err)
		}
		if !opts.Follow || !active {
			return noTranscript(opts.SessionID, active, where)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.PollInterval):
		}
		if active, err = sessionlist.Active(ctx, c.SSM, opts.SessionID); err != nil {
			return err
		}
	}
}

func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return err != nil && errors.As(err, &ae) && ae.ErrorCode() == code
}
