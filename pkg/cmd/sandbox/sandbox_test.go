package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
)

func run(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	_, err := cmd.ExecuteC()
	return err
}

func TestNewCmdUp(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		want    UpOptions
		wantErr string
	}{
		{name: "defaults", args: nil, want: UpOptions{Healthy: 3, AutoAttach: true}},
		{name: "instance only replaces the healthy ones", args: []string{"--instance", "a"},
			want: UpOptions{Healthy: 0, AutoAttach: true, Specs: []sandbox.InstanceSpec{{Name: "a"}}}},
		{name: "both", args: []string{"--instances", "2", "--instance", "b:no-role", "--instance", "c:isolated,tag=env=dev,tag=team=x", "--instance", "d:offline,version=3.0.161.0"},
			want: UpOptions{Healthy: 2, AutoAttach: true, Specs: []sandbox.InstanceSpec{
				{Name: "b", NoRole: true},
				{Name: "c", Isolated: true, Tags: map[string]string{"env": "dev", "team": "x"}},
				{Name: "d", Offline: true, AgentVersion: "3.0.161.0"}}}},
		{name: "everything else", args: []string{"--agent-version", "3.2.582.0", "--moto-url", "http://127.0.0.1:5000", "--tls", "--port", "8443", "--auto-attach=false", "--foreground", "--legacy-noninteractive-document", "--max-request-body", "1024", "--proxy", "--agent-realism"},
			want: UpOptions{Healthy: 3, AgentVersion: "3.2.582.0", MotoURL: "http://127.0.0.1:5000", TLS: true, Port: 8443, Foreground: true, LegacyNonInteractive: true, MaxRequestBody: 1024, Proxy: true, AgentRealism: true}},
		{name: "negative body limit", args: []string{"--max-request-body", "-1"}, wantErr: "--max-request-body must be"},
		{name: "negative instances", args: []string{"--instances", "-1"}, wantErr: "--instances must be from 0 to 100"},
		{name: "bad port", args: []string{"--port", "70000"}, wantErr: "--port must be from 0 to 65535"},
		{name: "bad agent version", args: []string{"--agent-version", "3.2"}, wantErr: "not a 4-part version"},
		{name: "bad moto url", args: []string{"--moto-url", "localhost:5000"}, wantErr: "--moto-url must be"},
		{name: "duplicate name", args: []string{"--instances", "1", "--instance", "web-1"}, wantErr: "used twice"},
		{name: "unknown option", args: []string{"--instance", "x:fast"}, wantErr: `unknown option "fast"`},
		{name: "arguments", args: []string{"now"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *UpOptions
			cmd := NewCmdUp(&cmdutil.Factory{IOStreams: ios}, func(o *UpOptions) error { got = o; return nil })
			err := run(t, cmd, append([]string{"--state-dir", dir}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var fe *cmdutil.FlagError
				if tt.name != "arguments" && !errors.As(err, &fe) {
					t.Errorf("err %v is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.StateDir != dir {
				t.Errorf("StateDir = %q, want %q", got.StateDir, dir)
			}
			got.IO, got.Executable, got.StateDir = nil, nil, ""
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options =\n%+v, want\n%+v", *got, tt.want)
			}
		})
	}
}

func TestServeArgsRoundTrip(t *testing.T) {
	// What up passes to serve parses back to the same options.
	ios, _, _, _ := iostreams.Test()
	var up, serve *UpOptions
	specs := []string{"b:no-role", "c:tag=a=b c", "d:version=3.0.161.0"}
	args := []string{"--state-dir", t.TempDir(), "--instances", "2", "--tls", "--port", "1234", "--auto-attach=false", "--agent-version", "3.2.582.0", "--moto-url", "http://127.0.0.1:1", "--legacy-noninteractive-document", "--max-request-body", "2048", "--proxy", "--agent-realism"}
	for _, s := range specs {
		args = append(args, "--instance", s)
	}
	if err := run(t, NewCmdUp(&cmdutil.Factory{IOStreams: ios}, func(o *UpOptions) error { up = o; return nil }), args...); err != nil {
		t.Fatal(err)
	}
	sargs := up.serveArgs(specs)
	if sargs[0] != "sandbox" || sargs[1] != "serve" {
		t.Fatalf("serve args %q", sargs)
	}
	if err := run(t, NewCmdServe(&cmdutil.Factory{IOStreams: ios}, func(o *UpOptions) error { serve = o; return nil }), sargs[2:]...); err != nil {
		t.Fatal(err)
	}
	up.IO, up.Executable, serve.IO, serve.Executable = nil, nil, nil, nil
	if !reflect.DeepEqual(up, serve) {
		t.Errorf("serve options %+v, want %+v", serve, up)
	}
}

func TestUpInstances(t *testing.T) {
	o := &UpOptions{Healthy: 2, AgentVersion: "3.1.0.0", Specs: []sandbox.InstanceSpec{{Name: "x", AgentVersion: "3.0.161.0"}, {Name: "y"}}}
	got := o.instances()
	want := []sandbox.InstanceSpec{{Name: "web-1", AgentVersion: "3.1.0.0"}, {Name: "web-2", AgentVersion: "3.1.0.0"},
		{Name: "x", AgentVersion: "3.0.161.0"}, {Name: "y", AgentVersion: "3.1.0.0"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instances = %+v, want %+v", got, want)
	}
}

func TestParseInstanceSpecErrors(t *testing.T) {
	for _, s := range []string{"", ":offline", "a:", "a b", "a:version=1", "a:tag=novalue", "a:tag==v", "a:offline,no-role", "a/b", strings.Repeat("n", 64)} {
		if _, err := ParseInstanceSpec(s); err == nil {
			t.Errorf("ParseInstanceSpec(%q): no error", s)
		}
	}
}

func TestDefaultStateDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got, _ := DefaultStateDir(env(map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"})); got != "/x/ssmkit/sandbox" {
		t.Errorf("with XDG_STATE_HOME: %s", got)
	}
	if got, _ := DefaultStateDir(env(map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/h"})); got != "/h/.local/state/ssmkit/sandbox" {
		t.Errorf("with a relative XDG_STATE_HOME: %s", got)
	}
}

// fakeState publishes a state whose pid is this test process, so it counts
// as running.
func fakeState(t *testing.T, st State) string {
	t.Helper()
	dir := t.TempDir()
	st.PID = os.Getpid()
	if err := writeState(dir, &st); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEnvRun(t *testing.T) {
	dir := fakeState(t, State{URL: "https://127.0.0.1:1", Env: []string{"AWS_ENDPOINT_URL=https://127.0.0.1:1", "AWS_CA_BUNDLE=/tmp/my dir/ca.pem", "BAD"},
		AgentConfig: "/tmp/st/amazon-ssm-agent.json"})
	ios, _, out, _ := iostreams.Test()
	if err := envRun(&EnvOptions{IO: ios, StateDir: dir}); err != nil {
		t.Fatal(err)
	}
	want := "export AWS_ENDPOINT_URL=https://127.0.0.1:1\nexport AWS_CA_BUNDLE='/tmp/my dir/ca.pem'\n"
	if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "export SSMKIT_SANDBOX_AGENT_CONFIG=/tmp/st/amazon-ssm-agent.json\n") {
		t.Errorf("env output:\n%s", out)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	ios, _, out, errOut := iostreams.Test()
	if err := envRun(&EnvOptions{IO: ios, StateDir: dir}); err == nil || !strings.Contains(err.Error(), "no sandbox is running") {
		t.Errorf("env: %v", err)
	}
	if err := statusRun(t.Context(), &StatusOptions{IO: ios, StateDir: dir, JSON: true}); !errors.Is(err, cmdutil.SilentError) {
		t.Errorf("status --json: %v", err)
	}
	var st statusJSON
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Running {
		t.Errorf("status --json printed %s (%v)", out, err)
	}
	if err := downRun(&DownOptions{IO: ios, StateDir: dir}); err != nil || !strings.Contains(errOut.String(), "No sandbox is running") {
		t.Errorf("down: %v, %s", err, errOut)
	}
	// A state file left by a dead process is stale: removed, not trusted.
	if err := writeState(dir, &State{PID: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := liveState(dir); !errors.Is(err, errNotRunning) {
		t.Errorf("stale state: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
		t.Errorf("stale state file not removed: %v", err)
	}
}

func TestPrintInstances(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	st := &State{Instances: []InstanceState{{Name: "web-1", ID: "i-1", Health: "healthy", AgentVersion: "3.3.1142.0", PrivateIP: "10.0.0.1"},
		{Name: "lost", ID: "i-2", Health: "offline"}, {Name: "nr", ID: "i-3", Health: "no-role"}}}
	if err := printInstances(ios, st, map[string]string{"i-1": "Online", "i-2": "ConnectionLost", "i-9": "Online"}); err != nil {
		t.Fatal(err)
	}
	want := "web-1\ti-1\tOnline\t3.3.1142.0\t10.0.0.1\n" +
		"lost\ti-2\tConnectionLost\t-\t-\n" +
		"nr\ti-3\tnot managed (no role)\t-\t-\n" +
		"-\ti-9\tOnline\t-\t-\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
}
