package start

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

func TestNewCmdStart(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    StartOptions
		wantErr string
	}{
		{name: "target", args: []string{"i-0123456789abcdef0"}, want: StartOptions{Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}}},
		{
			name: "document and parameters",
			args: []string{"web-1", "--document", "MyShell", "--parameter", "user=ops", "--parameter", "user=dev", "--parameter", "q=a=b", "--reason", "ticket 42"},
			want: StartOptions{Target: cmdutil.Target{Arg: "web-1"}, Document: "MyShell", Reason: "ticket 42",
				Parameters: map[string][]string{"user": {"ops", "dev"}, "q": {"a=b"}}},
		},
		{name: "no target: pick", args: []string{}, want: StartOptions{}},
		{name: "pick one", args: []string{"web-*", "--pick-one"}, want: StartOptions{Target: cmdutil.Target{Arg: "web-*", PickOne: true}}},
		{name: "two targets", args: []string{"a", "b"}, wantErr: "accepts at most 1 arg"},
		{name: "bad parameter", args: []string{"a", "--parameter", "novalue"}, wantErr: "not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios, SessionClients: cmdutil.SessionClientsLoader(nil)}
			var got *StartOptions
			cmd := NewCmdStart(f, func(o *StartOptions) error { got = o; return nil })
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
			if got.Target != tt.want.Target || got.Document != tt.want.Document || got.Reason != tt.want.Reason ||
				!equalParams(got.Parameters, tt.want.Parameters) {
				t.Errorf("options = %+v, want %+v", got, tt.want)
			}
			if got.Clients == nil {
				t.Error("Clients not set")
			}
		})
	}
}

func equalParams(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") {
			return false
		}
	}
	return true
}

func TestStartRun(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		names      map[string][]string
		wantTarget string
		wantErr    string
	}{
		{name: "instance id", target: "i-0123456789abcdef0", wantTarget: "i-0123456789abcdef0"},
		{name: "name tag", target: "web-1", names: map[string][]string{"web-1": {"i-0aaaaaaaaaaaaaaaa"}}, wantTarget: "i-0aaaaaaaaaaaaaaaa"},
		{name: "ambiguous name", target: "web", names: map[string][]string{"web": {"i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"}},
			wantErr: "the name \"web\" matches 2 nodes: web (i-0aaaaaaaaaaaaaaaa), web (i-0bbbbbbbbbbbbbbbb); give one ID instead"},
		{name: "unknown name", target: "nope", wantErr: "no running instance or managed node matches the name \"nope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := sessiontest.New(t)
			ios, stdin, stdout, stderr := iostreams.Test()
			stdin.WriteString("exit\n")
			opts := &StartOptions{
				IO:     ios,
				Target: cmdutil.Target{Arg: tt.target},
				Reason: "testing",
				Clients: func(context.Context) (session.Clients, error) {
					return session.Clients{SSM: svc, EC2: &sessiontest.EC2{Names: tt.names}}, nil
				},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := startRun(ctx, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if len(svc.Starts()) != 0 {
					t.Error("a session was started")
				}
				return
			}
			if err != nil {
				t.Fatalf("startRun: %v", err)
			}
			starts := svc.Starts()
			if len(starts) != 1 || aws.ToString(starts[0].Target) != tt.wantTarget || aws.ToString(starts[0].Reason) != "testing" {
				t.Fatalf("StartSession calls = %+v", starts)
			}
			// End of piped input also sends Ctrl-D, which may be echoed.
			if want := sessiontest.Banner + "exit\n"; !strings.HasPrefix(stdout.String(), want) {
				t.Errorf("stdout = %q, want %q", stdout.String(), want)
			}
			for _, want := range []string{"Starting session with SessionId: tester-", "Exiting session with sessionId: tester-"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr = %q, want %q", stderr.String(), want)
				}
			}
		})
	}
}
