package prefs

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// exitCode mirrors the root command's mapping of errors to exit codes.
func exitCode(err error) int {
	var fe *cmdutil.FlagError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &fe):
		return 2
	default:
		return 1
	}
}

func TestNewCmdSet(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		output   cmdutil.OutputFormat
		want     map[string]any
		wantOpts WriteOptions
		wantErr  string
	}{
		{name: "timeouts", args: []string{"--idle-timeout", "15", "--max-duration", "240"},
			want: map[string]any{prefs.KeyIdleSessionTimeout: "15", prefs.KeyMaxSessionDuration: "240"}},
		{name: "max 0 clears", args: []string{"--max-duration", "0"}, want: map[string]any{prefs.KeyMaxSessionDuration: ""}},
		{name: "booleans", args: []string{"--s3-encryption=false", "--cw-streaming", "--cw-encryption=true"},
			want: map[string]any{prefs.KeyS3Encryption: false, prefs.KeyLogStreaming: true, prefs.KeyLogEncryption: true}},
		{name: "strings", args: []string{"--s3-bucket", "b-1", "--s3-prefix", "p", "--cw-log-group", "/ssm/s", "--kms-key", "alias/k",
			"--run-as", "--run-as-default-user", "ops", "--shell-profile-linux", "exec bash", "--shell-profile-windows", ""},
			want: map[string]any{prefs.KeyS3Bucket: "b-1", prefs.KeyS3Prefix: "p", prefs.KeyLogGroup: "/ssm/s", prefs.KeyKMSKey: "alias/k",
				prefs.KeyRunAsEnabled: true, prefs.KeyRunAsDefaultUser: "ops", prefs.KeyShellProfileLinux: "exec bash", prefs.KeyShellProfileWindows: ""}},
		{name: "write flags", args: []string{"--idle-timeout", "5", "--dry-run", "--create-targets", "--retention-days", "30", "--document", "Mine"},
			want:     map[string]any{prefs.KeyIdleSessionTimeout: "5"},
			wantOpts: WriteOptions{Options: Options{Document: "Mine"}, DryRun: true, CreateTargets: true, RetentionDays: 30}},
		{name: "global json", args: []string{"--idle-timeout", "5"}, output: cmdutil.OutputJSON,
			want: map[string]any{prefs.KeyIdleSessionTimeout: "5"}, wantOpts: WriteOptions{Options: Options{JSON: true}}},
		{name: "nothing", args: nil, wantErr: "no preferences given"},
		{name: "idle 0", args: []string{"--idle-timeout", "0"}, wantErr: "--idle-timeout must be a whole number of minutes from 1 to 60"},
		{name: "idle 61", args: []string{"--idle-timeout", "61"}, wantErr: "from 1 to 60, got \"61\""},
		{name: "max 1441", args: []string{"--max-duration", "1441"}, wantErr: "--max-duration must be a whole number of minutes from 1 to 1440"},
		{name: "max negative", args: []string{"--max-duration", "-1"}, wantErr: "from 1 to 1440"},
		{name: "root", args: []string{"--run-as-default-user", "root"}, wantErr: "--run-as-default-user must not be root"},
		{name: "kms format", args: []string{"--kms-key", "my key"}, wantErr: "--kms-key must be a KMS key id, key ARN, alias/<name> or alias ARN"},
		{name: "bucket format", args: []string{"--s3-bucket", "Bad_Bucket"}, wantErr: "--s3-bucket must be an S3 bucket name"},
		{name: "bool", args: []string{"--s3-encryption=maybe"}, wantErr: "invalid argument \"maybe\""},
		{name: "retention", args: []string{"--idle-timeout", "5", "--create-targets", "--retention-days", "10"}, wantErr: "--retention-days must be one of 1, 3, 5"},
		{name: "retention without create", args: []string{"--idle-timeout", "5", "--retention-days", "30"}, wantErr: "only applies with --create-targets"},
		{name: "empty document", args: []string{"--idle-timeout", "5", "--document", ""}, wantErr: "--document must name a document"},
		{name: "args", args: []string{"x"}, wantErr: "unknown command"},
		// The whole document as it would be written is checked before any
		// write: SSM's limit is 64 KiB.
		{name: "over 64 KiB", args: []string{"--shell-profile-linux", strings.Repeat("echo hi;", 70000/8)},
			wantErr: "over SSM's limit of 65536 bytes (64 KiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			f.Options.Output = tt.output
			var got *SetOptions
			cmd := NewCmdSet(f, func(o *SetOptions) error { got = o; return nil })
			cmdtest.Prepare(cmd, tt.args)
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.name != "args" && exitCode(err) != 2 {
					t.Errorf("exit code %d, want 2", exitCode(err))
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("message is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Values, tt.want) {
				t.Errorf("values = %#v, want %#v", got.Values, tt.want)
			}
			w := tt.wantOpts
			if w.Document == "" {
				w.Document = ssmdoc.Shell
			}
			if w.RetentionDays == 0 {
				w.RetentionDays = prefs.DefaultRetentionDays
			}
			g := got.WriteOptions
			if g.Document != w.Document || g.JSON != w.JSON || g.DryRun != w.DryRun || g.CreateTargets != w.CreateTargets || g.RetentionDays != w.RetentionDays {
				t.Errorf("options = %+v, want %+v", g, w)
			}
			if g.Clients == nil {
				t.Error("Clients not set")
			}
		})
	}
}

func TestNewCmdApplyDiffResetShow(t *testing.T) {
	type got struct {
		file     string
		dryRun   bool
		document string
		json     bool
	}
	tests := []struct {
		name    string
		cmd     string
		args    []string
		want    got
		wantErr string
	}{
		{name: "apply", cmd: "apply", args: []string{"-f", "p.yaml"}, want: got{file: "p.yaml", document: ssmdoc.Shell}},
		{name: "apply stdin dry run", cmd: "apply", args: []string{"--file", "-", "--dry-run", "--json"}, want: got{file: "-", dryRun: true, document: ssmdoc.Shell, json: true}},
		{name: "apply needs file", cmd: "apply", wantErr: "-f <file> is required"},
		{name: "diff is a dry run", cmd: "diff", args: []string{"-f", "p.json", "--document", "D"}, want: got{file: "p.json", dryRun: true, document: "D"}},
		{name: "diff needs file", cmd: "diff", wantErr: "-f <file> is required"},
		{name: "diff has no create", cmd: "diff", args: []string{"-f", "x", "--create-targets"}, wantErr: "unknown flag: --create-targets"},
		{name: "reset", cmd: "reset", args: []string{"--dry-run"}, want: got{dryRun: true, document: ssmdoc.Shell}},
		{name: "reset takes no args", cmd: "reset", args: []string{"now"}, wantErr: "unknown command"},
		{name: "show", cmd: "show", args: []string{"--json", "--document", "X"}, want: got{document: "X", json: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			var g got
			var cmd *cobra.Command
			switch tt.cmd {
			case "apply":
				cmd = NewCmdApply(f, func(o *ApplyOptions) error { g = got{o.File, o.DryRun, o.Document, o.JSON}; return nil })
			case "diff":
				cmd = NewCmdDiff(f, func(o *ApplyOptions) error { g = got{o.File, o.DryRun, o.Document, o.JSON}; return nil })
			case "reset":
				cmd = NewCmdReset(f, func(o *ResetOptions) error { g = got{"", o.DryRun, o.Document, o.JSON}; return nil })
			case "show":
				cmd = NewCmdShow(f, func(o *ShowOptions) error { g = got{"", false, o.Document, o.JSON}; return nil })
			}
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
			if g != tt.want {
				t.Errorf("got %+v, want %+v", g, tt.want)
			}
		})
	}
}
