package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

func TestNewCmdLogs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    LogsOptions
		wantErr string
	}{
		{name: "id", args: []string{"s-1"}, want: LogsOptions{SessionID: "s-1", Source: SourceAuto, Document: ssmdoc.Shell}},
		{name: "follow s3", args: []string{"s-1", "-f", "--source", "s3", "--document", "D"}, want: LogsOptions{SessionID: "s-1", Follow: true, Source: SourceS3, Document: "D"}},
		{name: "cloudwatch", args: []string{"s-1", "--source", "cloudwatch"}, want: LogsOptions{SessionID: "s-1", Source: SourceCloudWatch, Document: ssmdoc.Shell}},
		{name: "bad source", args: []string{"s-1", "--source", "ftp"}, wantErr: "--source must be auto, cloudwatch or s3"},
		{name: "no id", wantErr: "accepts 1 arg"},
		{name: "empty document", args: []string{"s-1", "--document", ""}, wantErr: "--document must name"},
		// logs '' reached the API (DescribeSessions with an empty filter).
		{name: "empty id", args: []string{""}, wantErr: "the session ID must not be empty"},
		{name: "blank id", args: []string{"  "}, wantErr: "the session ID must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			var got *LogsOptions
			cmd := NewCmdLogs(f, func(o *LogsOptions) error { got = o; return nil })
			cmdtest.Prepare(cmd, tt.args)
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if got != nil {
					t.Error("the run function was called")
				}
				if strings.HasPrefix(tt.name, "empty") || strings.HasPrefix(tt.name, "blank") {
					var fe *cmdutil.FlagError
					if !errors.As(err, &fe) {
						t.Errorf("%v is not a usage error (exit 2)", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.SessionID != tt.want.SessionID || got.Follow != tt.want.Follow || got.Source != tt.want.Source || got.Document != tt.want.Document || got.Clients == nil {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEventText(t *testing.T) {
	if got := eventText(`{"eventVersion":"1.0","sessionData":["$ echo hi","hi"],"sessionId":"s"}`); got != "$ echo hi\nhi\n" {
		t.Errorf("agent event: %q", got)
	}
	if got := eventText("raw {output}\n"); got != "raw {output}\n" {
		t.Errorf("raw: %q", got)
	}
	if got := eventText(`{"not":"an event"}`); got != `{"not":"an event"}` {
		t.Errorf("other json: %q", got)
	}
}

type env struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	cfg aws.Config
	c   session.Clients
}

// shell opens a session, runs input until want appears, exits and waits
// for the session to end. It returns the session ID.
func (e *env) shell(input, want string) string {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := session.OpenTarget(ctx, e.c, session.StartRequest{Target: e.sb.Instances()[0].ID}, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.drive(ctx, s, input, want)
	return s.ID()
}

func (e *env) drive(ctx context.Context, s *session.Session, input, want string) {
	t := e.t
	t.Helper()
	inR, inW := io.Pipe()
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- session.RunShell(ctx, s, session.ShellIO{Stdin: inR, Stdout: &out, Stderr: io.Discard})
	}()
	io.WriteString(inW, input)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("shell ended before %q: %v", want, err)
		case <-ctx.Done():
			t.Fatalf("no %q in %q", want, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	io.WriteString(inW, "exit\n")
	if err := <-done; err != nil {
		t.Fatalf("shell: %v", err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("session did not end")
	}
}

func (e *env) logs(opts func(*LogsOptions), args ...string) (string, string, error) {
	ios, _, stdout, stderr := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, AWSConfig: func(context.Context) (aws.Config, error) { return e.cfg, nil }}
	cmd := NewCmdLogs(f, func(o *LogsOptions) error {
		o.PollInterval = 50 * time.Millisecond
		if opts != nil {
			opts(o)
		}
		return logsRun(context.Background(), o)
	})
	cmdtest.Prepare(cmd, args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cmd.ExecuteContextC(ctx)
	return stdout.String(), stderr.String(), err
}

// logsEventually retries while the transcript is being uploaded.
func (e *env) logsEventually(want string, args ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, stderr, err := e.logs(nil, args...)
		if err == nil && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("logs %v: %v\nstdout %q\nstderr %q", args, err, out, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) setPrefs(mutate func(d *prefs.Document)) {
	e.t.Helper()
	ctx := context.Background()
	store := prefs.Store{SSM: awsapi.NewSSM(e.cfg), Name: ssmdoc.Shell}
	snap, err := store.Load(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	d := snap.Doc.Clone()
	mutate(d)
	if _, err := store.Save(ctx, snap, d); err != nil {
		e.t.Fatal(err)
	}
}

func TestLogsAgainstSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "logs"}}})
	cfg := sb.AWSConfig()
	c := session.NewClients(cfg)
	c.Dial.TLSConfig = sb.ClientTLS()
	e := &env{t: t, sb: sb, cfg: cfg, c: c}
	ctx := context.Background()

	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := awsapi.NewS3(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("transcripts")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cloudwatchlogs.NewFromConfig(cfg).CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/ssm/sessions")}); err != nil {
		t.Fatal(err)
	}
	e.setPrefs(func(d *prefs.Document) {
		d.Set(prefs.KeyS3Bucket, "transcripts")
		d.Set(prefs.KeyS3Prefix, "audit")
		d.Set(prefs.KeyS3Encryption, true)
		d.Set(prefs.KeyLogGroup, "/ssm/sessions")
		d.Set(prefs.KeyLogStreaming, false)
		d.Set(prefs.KeyKMSKey, aws.ToString(key.KeyMetadata.KeyId))
	})

	id := e.shell("echo transcript-$((6*7))\n", "transcript-42")
	t.Run("cloudwatch", func(t *testing.T) {
		out := e.logsEventually("transcript-42", id)
		t.Logf("transcript from CloudWatch Logs: %q", out)
		e.logsEventually("transcript-42", id, "--source", "cloudwatch")
	})
	t.Run("s3", func(t *testing.T) {
		e.logsEventually("transcript-42", id, "--source", "s3")
		obj, err := awsapi.NewS3(cfg).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("transcripts"), Key: aws.String("audit/" + id + ".log")})
		if err != nil || obj.ServerSideEncryption != "aws:kms" {
			t.Errorf("object %+v %v: want SSE-KMS", obj, err)
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		_, _, err := e.logs(nil, "nobody-0123456789abcdef0")
		if err == nil || !strings.Contains(err.Error(), "session nobody-0123456789abcdef0 not found") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("follow while streaming", func(t *testing.T) {
		e.setPrefs(func(d *prefs.Document) {
			d.Set(prefs.KeyLogStreaming, true)
			d.Set(prefs.KeyS3Bucket, "")
			d.Set(prefs.KeyKMSKey, "")
		})
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := session.OpenTarget(sctx, c, session.StartRequest{Target: sb.Instances()[0].ID}, session.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		type res struct {
			out string
			err error
		}
		done := make(chan res, 1)
		go func() {
			out, _, err := e.logs(nil, s.ID(), "--follow")
			done <- res{out, err}
		}()
		e.drive(sctx, s, "echo followed-$((7*8))\n", "followed-56")
		select {
		case r := <-done:
			if r.err != nil || !strings.Contains(r.out, "followed-56") {
				t.Fatalf("--follow: %v %q", r.err, r.out)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("--follow did not return after the session ended")
		}
	})

	t.Run("logging off", func(t *testing.T) {
		e.setPrefs(func(d *prefs.Document) { d.ResetInputs() })
		off := e.shell("echo unlogged\n", "unlogged")
		_, _, err := e.logs(nil, off)
		if !errors.Is(err, ErrLoggingOff) || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), fmt.Sprintf("logging was off for session %s", off)) {
			t.Fatalf("err = %v, want one line saying logging was off", err)
		}
		t.Logf("logging off: %v", err)
	})
}
