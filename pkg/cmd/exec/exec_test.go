package exec

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

func TestNewCmdExec(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    ExecOptions
		wantErr string
	}{
		{name: "single argument", args: []string{"i-0123456789abcdef0", "--", "ls -l | wc"}, want: ExecOptions{Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Command: "sh -c 'ls -l | wc'"}},
		{name: "several arguments are quoted", args: []string{"web", "--", "echo", "it's", "a b", "-n"}, want: ExecOptions{Target: cmdutil.Target{Arg: "web"}, Command: `echo 'it'\''s' 'a b' -n`}},
		{name: "plain words need no shell", args: []string{"web", "--", "uname -a"}, want: ExecOptions{Target: cmdutil.Target{Arg: "web"}, Command: "uname -a"}},
		{name: "tty", args: []string{"web", "--tty", "--", "top"}, want: ExecOptions{Target: cmdutil.Target{Arg: "web"}, Command: "top", TTY: true}},
		{name: "document and reason", args: []string{"web", "--document", "Doc", "--reason", "r", "--", "id"}, want: ExecOptions{Target: cmdutil.Target{Arg: "web"}, Command: "id", Document: "Doc", Reason: "r"}},
		{name: "no command", args: []string{"web"}, wantErr: "no command given"},
		{name: "no target: pick", args: []string{"--", "uptime"}, want: ExecOptions{Command: "uptime"}},
		{name: "pick one", args: []string{"web-*", "--pick-one", "--", "id"}, want: ExecOptions{Target: cmdutil.Target{Arg: "web-*", PickOne: true}, Command: "id"}},
		{name: "nothing", args: []string{}, wantErr: "requires at least 1 arg"},
		{name: "command before dash", args: []string{"web", "ls", "--", "x"}, wantErr: "put the command after --"},
		{name: "empty command", args: []string{"web", "--", " "}, wantErr: "the command is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *ExecOptions
			cmd := NewCmdExec(&cmdutil.Factory{IOStreams: ios}, func(o *ExecOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Target != tt.want.Target || got.Command != tt.want.Command || got.TTY != tt.want.TTY ||
				got.Document != tt.want.Document || got.Reason != tt.want.Reason {
				t.Errorf("options = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExecRun(t *testing.T) {
	tests := []struct {
		name       string
		command    string
		tty        bool
		stdin      string
		wantDoc    string
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{name: "success", command: "echo hello", wantDoc: ssmdoc.NonInteractiveCommand, wantOut: "hello\n"},
		{name: "exit code and stderr", command: "echo partial; warn it broke; exit 3", wantDoc: ssmdoc.NonInteractiveCommand,
			wantOut: "partial\n", wantErrOut: "it broke\n", wantCode: 3},
		{name: "tty", command: "top", tty: true, stdin: "exit\n", wantDoc: ssmdoc.InteractiveCommand, wantOut: sessiontest.Banner + "exit\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := sessiontest.New(t)
			ios, stdin, stdout, stderr := iostreams.Test()
			stdin.WriteString(tt.stdin)
			opts := &ExecOptions{
				IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Command: tt.command, TTY: tt.tty,
				Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := execRun(ctx, opts)
			var code cmdutil.ExitCodeError
			switch {
			case tt.wantCode != 0:
				if !errors.As(err, &code) || int(code) != tt.wantCode {
					t.Fatalf("err = %v, want exit code %d", err, tt.wantCode)
				}
			case err != nil:
				t.Fatalf("execRun: %v", err)
			}
			if doc := aws.ToString(svc.Starts()[0].DocumentName); doc != tt.wantDoc {
				t.Errorf("document = %q, want %q", doc, tt.wantDoc)
			}
			if !strings.HasPrefix(stdout.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantOut)
			}
			if !strings.Contains(stderr.String(), tt.wantErrOut) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.wantErrOut)
			}
		})
	}
}

func TestExecRunTargetNotConnected(t *testing.T) {
	svc := sessiontest.New(t)
	svc.FailStart(&smithy.GenericAPIError{Code: "TargetNotConnected", Message: "i-0123456789abcdef0 is not connected."})
	ios, _, _, _ := iostreams.Test()
	opts := &ExecOptions{
		IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Command: "id",
		Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
	}
	err := execRun(context.Background(), opts)
	if err == nil {
		t.Fatal("execRun succeeded")
	}
	if hint := awsapi.Hint(err); !strings.Contains(hint, "ssmkit doctor i-0123456789abcdef0") {
		t.Errorf("hint = %q", hint)
	}
}
