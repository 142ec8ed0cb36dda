package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/sessionlist"
)

func TestNewCmdList(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		output  cmdutil.OutputFormat
		want    ListOptions
		wantErr string
	}{
		{name: "active", want: ListOptions{}},
		{name: "history filtered", args: []string{"--history", "--target", "i-1", "--owner", "arn:x"}, want: ListOptions{History: true, Target: "i-1", Owner: "arn:x"}},
		{name: "json", args: []string{"--json"}, want: ListOptions{JSON: true}},
		{name: "global json", output: cmdutil.OutputJSON, want: ListOptions{JSON: true}},
		{name: "no args", args: []string{"x"}, wantErr: "unknown command"},
		{name: "bad flag", args: []string{"--state", "x"}, wantErr: "unknown flag"},
		{name: "empty target", args: []string{"--target", ""}, wantErr: "--target must not be empty"},
		{name: "empty owner", args: []string{"--owner", " "}, wantErr: "--owner must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			f.Options.Output = tt.output
			var got *ListOptions
			cmd := NewCmdList(f, func(o *ListOptions) error { got = o; return nil })
			cmdtest.Prepare(cmd, tt.args)
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
			if got.History != tt.want.History || got.Target != tt.want.Target || got.Owner != tt.want.Owner || got.JSON != tt.want.JSON || got.Client == nil {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewCmdTerminate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		json    bool
		wantErr string
	}{
		{name: "one", args: []string{"s-1"}, want: []string{"s-1"}},
		{name: "many json", args: []string{"s-1", "s-2", "--json"}, want: []string{"s-1", "s-2"}, json: true},
		{name: "none", wantErr: "requires at least 1 arg"},
		{name: "empty", args: []string{""}, wantErr: "a session ID must not be empty"},
		{name: "empty among others", args: []string{"s-1", " "}, wantErr: "a session ID must not be empty (argument 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			var got *TerminateOptions
			cmd := NewCmdTerminate(f, func(o *TerminateOptions) error { got = o; return nil })
			cmdtest.Prepare(cmd, tt.args)
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var fe *cmdutil.FlagError
				if strings.HasPrefix(tt.name, "empty") && !errors.As(err, &fe) {
					t.Errorf("%v is not a usage error (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.IDs, tt.want) || got.JSON != tt.json {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func run(t *testing.T, cfg aws.Config, args ...string) (string, string, error) {
	t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, AWSConfig: func(context.Context) (aws.Config, error) { return cfg, nil }}
	cmd := NewCmdSessions(f)
	cmdtest.Prepare(cmd, args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cmd.ExecuteContextC(ctx)
	return stdout.String(), stderr.String(), err
}

func listJSON(t *testing.T, cfg aws.Config, args ...string) []sessionlist.Session {
	t.Helper()
	out, stderr, err := run(t, cfg, append([]string{"ls", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("sessions ls: %v %s", err, stderr)
	}
	var list []sessionlist.Session
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return list
}

func TestSessionsAgainstSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "a"}, {Name: "b"}}})
	cfg := sb.AWSConfig()
	c := session.NewClients(cfg)
	c.Dial.TLSConfig = sb.ClientTLS()
	a, b := sb.Instances()[0].ID, sb.Instances()[1].ID
	open := func(target, reason string) *session.Session {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := session.OpenTarget(ctx, c, session.StartRequest{Target: target, Reason: reason}, session.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	if out, stderr, err := run(t, cfg, "ls"); err != nil || out != "" || !strings.Contains(stderr, "No active sessions") {
		t.Fatalf("empty ls: %q %q %v", out, stderr, err)
	}
	s1 := open(a, "ticket 1")
	s2 := open(b, "ticket 2")

	all := listJSON(t, cfg)
	if len(all) != 2 {
		t.Fatalf("active sessions %+v", all)
	}
	onA := listJSON(t, cfg, "--target", a)
	if len(onA) != 1 || onA[0].SessionID != s1.ID() || onA[0].Status != "Connected" || onA[0].Reason != "ticket 1" || onA[0].StartDate == nil {
		t.Fatalf("--target: %+v", onA)
	}
	owner := onA[0].Owner
	if got := listJSON(t, cfg, "--owner", owner); len(got) != 2 {
		t.Errorf("--owner %s: %+v", owner, got)
	}
	if got := listJSON(t, cfg, "--owner", "arn:aws:iam::000000000000:user/nobody"); len(got) != 0 {
		t.Errorf("--owner nobody: %+v", got)
	}
	out, _, err := run(t, cfg, "ls")
	if err != nil || !strings.Contains(out, s1.ID()+"\t"+a+"\tConnected\t"+owner) {
		t.Errorf("table: %q %v", out, err)
	}

	// terminate ends a live session.
	_, stderr, err := run(t, cfg, "terminate", s1.ID())
	if err != nil || !strings.Contains(stderr, "Terminated "+s1.ID()) {
		t.Fatalf("terminate: %v %s", err, stderr)
	}
	select {
	case <-s1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after terminate")
	}
	if got := listJSON(t, cfg); len(got) != 1 || got[0].SessionID != s2.ID() {
		t.Errorf("active after terminate: %+v", got)
	}
	hist := listJSON(t, cfg, "--history")
	if len(hist) != 1 || hist[0].SessionID != s1.ID() || hist[0].Status != "Terminated" || hist[0].EndDate == nil {
		t.Errorf("history: %+v", hist)
	}
	out, _, _ = run(t, cfg, "ls", "--history")
	if f := strings.Split(strings.TrimSpace(out), "\t"); len(f) != 7 {
		t.Errorf("history table row %q", out)
	}

	// An unknown ID: the error names it; with several IDs every one is
	// tried and the command exits 1 silently after its own lines.
	_, _, err = run(t, cfg, "terminate", "nobody-0123456789abcdef0")
	if err == nil || !strings.Contains(err.Error(), "terminating nobody-0123456789abcdef0") || !strings.Contains(err.Error(), "DoesNotExist") {
		t.Errorf("unknown id: %v", err)
	}
	_, stderr, err = run(t, cfg, "terminate", "nobody-0123456789abcdef0", s2.ID())
	if !errors.Is(err, cmdutil.SilentError) || !strings.Contains(stderr, "X nobody-0123456789abcdef0: SSM TerminateSession: DoesNotExistException") ||
		!strings.Contains(stderr, "Terminated "+s2.ID()) {
		t.Errorf("mixed: %v\n%s", err, stderr)
	}
	select {
	case <-s2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the second session did not end")
	}
	out, _, err = run(t, cfg, "terminate", "--json", "nobody-1")
	var res []terminated
	if !errors.Is(err, cmdutil.SilentError) || json.Unmarshal([]byte(out), &res) != nil || len(res) != 1 || res[0].Terminated || res[0].Error == "" {
		t.Errorf("json: %v %s", err, out)
	}
}
