package root

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	versionCmd "github.com/ssmkit/ssmkit/pkg/cmd/version"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

const (
	fakeSecret = "fake/SECRET+key0123456789abcdefghijklmnop"
	fakeToken  = "FAKEsessionTOKEN//0123456789abcdefghij=="
)

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

type testRun struct {
	f              *cmdutil.Factory
	stdout, stderr string
	code           int
}

// run executes ssmkit in-process with extra test commands attached:
// each returns the error that the exit-code mapping is tested against.
func run(t *testing.T, ctx context.Context, env map[string]string, setup func(*iostreams.IOStreams), args ...string) testRun {
	t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	if setup != nil {
		setup(ios)
	}
	f := NewFactory(ios, fakeEnv(env))
	cmd := NewCmdRoot(f)
	fail := func(use string, err error) *cobra.Command {
		return &cobra.Command{Use: use, RunE: func(*cobra.Command, []string) error { return err }}
	}
	cmd.AddCommand(
		fail("ok", nil),
		fail("boom", errors.New("the widget broke\nin two places")),
		fail("silent", fmt.Errorf("doctor: %w", cmdutil.SilentError)),
		fail("exit7", fmt.Errorf("exec: %w", cmdutil.ExitCodeError(7))),
		fail("exit0", cmdutil.ExitCodeError(0)),
		fail("exit-1", cmdutil.ExitCodeError(-1)),
		fail("flagerr", cmdutil.FlagErrorf("--target and --filter cannot be used together")),
		fail("leak", fmt.Errorf("signing with %s and %s failed", fakeSecret, fakeToken)),
		fail("aws", fmt.Errorf("starting session on i-0123456789abcdef0: %w", &smithy.OperationError{
			ServiceID: "SSM", OperationName: "StartSession",
			Err: &smithy.GenericAPIError{Code: "TargetNotConnected", Message: "i-0123456789abcdef0 is not connected."},
		})),
		&cobra.Command{Use: "one <arg>", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil }},
		&cobra.Command{Use: "wait", RunE: func(c *cobra.Command, _ []string) error {
			<-c.Context().Done()
			return fmt.Errorf("waiting: %w", c.Context().Err())
		}},
	)
	code := Execute(ctx, f, cmd, args)
	return testRun{f: f, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // exact; "*" skips the check
		wantStdout string // substring
	}{
		{name: "success", args: []string{"ok"}, wantCode: 0},
		{name: "no arguments prints help", args: []string{}, wantCode: 0, wantStdout: "Available Commands:"},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStdout: "--endpoint-url"},
		{
			name: "unknown command", args: []string{"frobnicate"}, wantCode: 2,
			wantStderr: "error: unknown command \"frobnicate\" for \"ssmkit\"\nRun 'ssmkit --help' for usage.\n",
		},
		{
			name: "unknown command with a suggestion", args: []string{"verison"}, wantCode: 2,
			wantStderr: "error: unknown command \"verison\" for \"ssmkit\"; did you mean \"version\"?\nRun 'ssmkit --help' for usage.\n",
		},
		{
			name: "unknown flag", args: []string{"version", "--nope"}, wantCode: 2,
			wantStderr: "error: unknown flag: --nope\nRun 'ssmkit version --help' for usage.\n",
		},
		{
			name: "bad --output", args: []string{"--output", "yaml", "version"}, wantCode: 2,
			wantStderr: "error: invalid argument \"yaml\" for \"--output\" flag: must be one of table, json\nRun 'ssmkit version --help' for usage.\n",
		},
		{
			name: "bad --endpoint-url", args: []string{"ok", "--endpoint-url", "localhost:4566"}, wantCode: 2,
			wantStderr: "error: invalid argument \"localhost:4566\" for \"--endpoint-url\" flag: must be an http:// or https:// URL with a host\nRun 'ssmkit ok --help' for usage.\n",
		},
		{
			name: "flag missing its value", args: []string{"ok", "--region"}, wantCode: 2,
			wantStderr: "error: flag needs an argument: --region\nRun 'ssmkit ok --help' for usage.\n",
		},
		{
			name: "missing argument", args: []string{"one"}, wantCode: 2,
			wantStderr: "error: accepts 1 arg(s), received 0\nRun 'ssmkit one --help' for usage.\n",
		},
		{
			name: "extra argument to a cobra built-in", args: []string{"completion", "bash", "extra"}, wantCode: 2,
			wantStderr: "error: unknown command \"extra\" for \"ssmkit completion bash\"\nRun 'ssmkit completion bash --help' for usage.\n",
		},
		{
			name: "unknown subcommand of a group", args: []string{"completion", "tcsh"}, wantCode: 2,
			wantStderr: "error: unknown command \"tcsh\" for \"ssmkit completion\"\nRun 'ssmkit completion --help' for usage.\n",
		},
		{name: "a group without arguments shows its help", args: []string{"completion"}, wantCode: 0, wantStdout: "Available Commands:"},
		{
			name: "FlagErrorf", args: []string{"flagerr"}, wantCode: 2,
			wantStderr: "error: --target and --filter cannot be used together\nRun 'ssmkit flagerr --help' for usage.\n",
		},
		{
			name: "runtime error is one line", args: []string{"boom"}, wantCode: 1,
			wantStderr: "error: the widget broke; in two places\n",
		},
		{name: "SilentError", args: []string{"silent"}, wantCode: 1, wantStderr: ""},
		{name: "ExitCodeError(7)", args: []string{"exit7"}, wantCode: 7, wantStderr: ""},
		{name: "ExitCodeError(0)", args: []string{"exit0"}, wantCode: 0, wantStderr: ""},
		{name: "ExitCodeError out of range", args: []string{"exit-1"}, wantCode: 1, wantStderr: ""},
		{
			name: "AWS error gets a summary and a hint", args: []string{"aws"}, wantCode: 1,
			wantStderr: "error: starting session on i-0123456789abcdef0: SSM StartSession: TargetNotConnected: i-0123456789abcdef0 is not connected.\n" +
				"hint: the SSM Agent on i-0123456789abcdef0 is not connected (instance stopped, agent offline, no instance profile, or no network path to SSM): run `ssmkit doctor i-0123456789abcdef0`\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, context.Background(), nil, nil, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantStderr != "*" && r.stderr != tt.wantStderr {
				t.Errorf("stderr =\n%q\nwant\n%q", r.stderr, tt.wantStderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.wantStdout)
			}
			if tt.wantCode != 0 && strings.Contains(r.stdout+r.stderr, "Usage:") {
				t.Error("errors must not dump the usage text")
			}
		})
	}
}

func TestInterruptExits130(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := run(t, ctx, nil, nil, "wait")
	if r.code != exitInterrupt || r.stderr != "" {
		t.Errorf("code = %d, stderr = %q; want 130 and no message", r.code, r.stderr)
	}
}

func TestRedactsSecretsFromErrors(t *testing.T) {
	env := map[string]string{"AWS_SECRET_ACCESS_KEY": fakeSecret, "AWS_SESSION_TOKEN": fakeToken}
	r := run(t, context.Background(), env, nil, "leak")
	if r.code != 1 {
		t.Fatalf("code = %d", r.code)
	}
	for _, secret := range []string{fakeSecret, fakeToken} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("stderr leaks a secret: %q", r.stderr)
		}
	}
	if want := "error: signing with [REDACTED] and [REDACTED] failed\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestGlobalFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want cmdutil.GlobalOptions
	}{
		{name: "defaults", args: []string{"ok"}, want: cmdutil.GlobalOptions{}},
		{
			name: "all flags before the command",
			args: []string{"--profile", "dev", "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:4566", "--output", "json", "--debug", "--no-color", "ok"},
			want: cmdutil.GlobalOptions{Profile: "dev", Region: "eu-west-1", EndpointURL: "http://127.0.0.1:4566", Output: cmdutil.OutputJSON, Debug: true, NoColor: true},
		},
		{
			name: "flags after the command, = syntax",
			args: []string{"ok", "--profile=prod", "--region=us-west-2", "--output=table", "--endpoint-url=https://ssm.example.test"},
			want: cmdutil.GlobalOptions{Profile: "prod", Region: "us-west-2", Output: cmdutil.OutputTable, EndpointURL: "https://ssm.example.test"},
		},
		{name: "output is case-insensitive", args: []string{"ok", "--output", "JSON"}, want: cmdutil.GlobalOptions{Output: cmdutil.OutputJSON}},
		{name: "--no-color=false", args: []string{"ok", "--no-color=false"}, want: cmdutil.GlobalOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, context.Background(), nil, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("code = %d, stderr = %q", r.code, r.stderr)
			}
			if r.f.Options != tt.want {
				t.Errorf("Options = %+v, want %+v", r.f.Options, tt.want)
			}
		})
	}
}

func TestColor(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want bool
	}{
		{name: "tty", args: []string{"ok"}, want: true},
		{name: "--no-color", args: []string{"ok", "--no-color"}, want: false},
		{name: "NO_COLOR", env: map[string]string{"NO_COLOR": "1"}, args: []string{"ok"}, want: false},
		{name: "--no-color beats CLICOLOR_FORCE", env: map[string]string{"CLICOLOR_FORCE": "1"}, args: []string{"--no-color", "ok"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, context.Background(), nil, func(ios *iostreams.IOStreams) {
				ios.SetStdoutTTY(true)
				ios.ApplyColorEnv(fakeEnv(tt.env))
			}, tt.args...)
			if got := r.f.IOStreams.ColorEnabled(); got != tt.want {
				t.Errorf("ColorEnabled = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Run("--version", func(t *testing.T) {
		r := run(t, context.Background(), nil, nil, "--version")
		// The same line as `ssmkit version`, printed by cobra without a
		// template (root.go says why).
		if want := versionCmd.Current().String() + "\n"; r.code != 0 || r.stdout != want || !strings.HasPrefix(r.stdout, "ssmkit version ") {
			t.Errorf("code %d stdout %q", r.code, r.stdout)
		}
	})
	t.Run("version --output json", func(t *testing.T) {
		r := run(t, context.Background(), nil, nil, "version", "--output", "json")
		if r.code != 0 {
			t.Fatalf("code = %d, stderr = %q", r.code, r.stderr)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		for _, k := range []string{"version", "commit", "buildDate", "goVersion", "platform"} {
			if _, ok := got[k]; !ok {
				t.Errorf("missing key %q in %s", k, r.stdout)
			}
		}
		if got["version"] == "" || !strings.HasPrefix(got["goVersion"], "go") {
			t.Errorf("unexpected values: %v", got)
		}
	})
}

func TestCompletion(t *testing.T) {
	tests := []struct{ shell, want string }{
		{"bash", "# bash completion V2 for ssmkit"},
		{"zsh", "#compdef ssmkit"},
		{"fish", "# fish completion for ssmkit"},
		{"powershell", "# powershell completion for ssmkit"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			r := run(t, context.Background(), nil, nil, "completion", tt.shell)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("code %d, stdout starts %q", r.code, r.stdout[:min(len(r.stdout), 80)])
			}
		})
	}
	t.Run("--output values complete", func(t *testing.T) {
		r := run(t, context.Background(), nil, nil, "__complete", "version", "--output", "")
		if !strings.Contains(r.stdout, "table\njson\n") {
			t.Errorf("stdout = %q", r.stdout)
		}
	})
}

// isolateAWS clears the developer's AWS setup from the environment.
func isolateAWS(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", fakeSecret)
	t.Setenv("AWS_SESSION_TOKEN", fakeToken)
}

// runAWS runs ssmkit with a test command that loads the AWS config
// through the Factory and starts a session against a local server.
func runAWS(t *testing.T, env map[string]string, args ...string) (testRun, aws.Config) {
	t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	f := NewFactory(ios, fakeEnv(env))
	cmd := NewCmdRoot(f)
	var cfg aws.Config
	cmd.AddCommand(&cobra.Command{
		Use: "fake-start <target>", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var err error
			if cfg, err = f.AWSConfig(c.Context()); err != nil {
				return err
			}
			_, err = awsapi.NewSSM(cfg).StartSession(c.Context(), &ssm.StartSessionInput{Target: aws.String(args[0])})
			if err != nil {
				return fmt.Errorf("starting session on %s: %w", args[0], err)
			}
			return nil
		},
	})
	code := Execute(context.Background(), f, cmd, args)
	return testRun{f: f, stdout: stdout.String(), stderr: stderr.String(), code: code}, cfg
}

func TestAWSEndToEnd(t *testing.T) {
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", "req-1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"TargetNotConnected","message":"i-0123456789abcdef0 is not connected."}`))
	}))
	t.Cleanup(srv.Close)

	t.Run("flags reach the AWS config and errors get hints", func(t *testing.T) {
		isolateAWS(t)
		t.Setenv("AWS_REGION", "ap-south-1")
		env := map[string]string{"AWS_SECRET_ACCESS_KEY": fakeSecret, "AWS_SESSION_TOKEN": fakeToken}
		r, cfg := runAWS(t, env, "fake-start", "i-0123456789abcdef0", "--region", "eu-north-1", "--endpoint-url", srv.URL, "--debug")
		if r.code != 1 {
			t.Fatalf("code = %d, stderr = %q", r.code, r.stderr)
		}
		if cfg.Region != "eu-north-1" || cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != srv.URL {
			t.Errorf("config region %q endpoint %v", cfg.Region, cfg.BaseEndpoint)
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("want debug, error and hint lines, got:\n%s", r.stderr)
		}
		if !strings.HasPrefix(lines[0], "debug: SSM.StartSession host=127.0.0.1:") || !strings.Contains(lines[0], "status=400") {
			t.Errorf("debug line = %q", lines[0])
		}
		if want := "error: starting session on i-0123456789abcdef0: SSM StartSession: TargetNotConnected: i-0123456789abcdef0 is not connected."; lines[1] != want {
			t.Errorf("error line = %q, want %q", lines[1], want)
		}
		if !strings.HasPrefix(lines[2], "hint: ") || !strings.Contains(lines[2], "ssmkit doctor i-0123456789abcdef0") {
			t.Errorf("hint line = %q", lines[2])
		}
		if strings.Contains(r.stderr, fakeSecret) || strings.Contains(r.stderr, fakeToken) {
			t.Error("stderr leaks credentials")
		}
	})

	t.Run("missing region", func(t *testing.T) {
		isolateAWS(t)
		before := requests
		r, _ := runAWS(t, nil, "fake-start", "i-0123456789abcdef0", "--endpoint-url", srv.URL)
		if r.code != 1 {
			t.Fatalf("code = %d", r.code)
		}
		if want := "error: no AWS region configured: set --region or AWS_REGION, or add region to your profile\n"; r.stderr != want {
			t.Errorf("stderr = %q, want %q", r.stderr, want)
		}
		if requests != before {
			t.Error("no request may be sent without a region")
		}
	})

	t.Run("help and flag errors never load AWS config", func(t *testing.T) {
		isolateAWS(t)
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "does-not-exist", "config"))
		before := requests
		for _, args := range [][]string{{"fake-start", "--help"}, {"fake-start"}, {"version"}} {
			r, _ := runAWS(t, nil, append(args, "--profile", "no-such-profile")...)
			if strings.Contains(r.stderr, "profile") {
				t.Errorf("%v touched the AWS config: %q", args, r.stderr)
			}
		}
		if requests != before {
			t.Error("requests were sent")
		}
	})
}

func TestArgsAsPlugin(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{argv: []string{"/usr/bin/ssmkit", "ls"}, want: "ls"},
		{argv: []string{"/home/u/.local/bin/session-manager-plugin", "--version"}, want: "plugin --version"},
		{argv: []string{"./session-manager-plugin.exe"}, want: "plugin"},
		{argv: []string{"session-manager-plugin", "AWS_SSM_START_SESSION_RESPONSE", "us-east-1"}, want: "plugin AWS_SSM_START_SESSION_RESPONSE us-east-1"},
	} {
		if got := strings.Join(Args(tt.argv), " "); got != tt.want {
			t.Errorf("Args(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}
