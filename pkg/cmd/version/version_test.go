package version

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

func TestNewCmdVersion(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		output   cmdutil.OutputFormat
		wantJSON bool
		wantErr  bool
	}{
		{name: "no flags", args: []string{}},
		{name: "json output", args: []string{}, output: cmdutil.OutputJSON, wantJSON: true},
		{name: "table output", args: []string{}, output: cmdutil.OutputTable},
		{name: "rejects arguments", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			f.Options.Output = tt.output
			var got *VersionOptions
			cmd := NewCmdVersion(f, func(o *VersionOptions) error {
				got = o
				return nil
			})
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			_, err := cmd.ExecuteC()
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.JSON != tt.wantJSON {
				t.Errorf("JSON = %v, want %v", got.JSON, tt.wantJSON)
			}
			if got.Info.GoVersion != runtime.Version() {
				t.Errorf("GoVersion = %q", got.Info.GoVersion)
			}
		})
	}
}

func TestVersionRun(t *testing.T) {
	full := Info{Version: "v1.2.3", Commit: "0123456789abcdef0123", BuildDate: "2025-06-01T12:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	tests := []struct {
		name string
		opts VersionOptions
		want string
	}{
		{
			name: "text",
			opts: VersionOptions{Info: full},
			want: "ssmkit version v1.2.3 (commit 0123456789ab, built 2025-06-01T12:00:00Z, go1.26.8 linux/amd64)\n",
		},
		{
			name: "text for a dev build",
			opts: VersionOptions{Info: Info{Version: "dev", GoVersion: "go1.26.8", Platform: "darwin/arm64"}},
			want: "ssmkit version dev (go1.26.8 darwin/arm64)\n",
		},
		{
			name: "json",
			opts: VersionOptions{Info: full, JSON: true},
			want: `{
  "version": "v1.2.3",
  "commit": "0123456789abcdef0123",
  "buildDate": "2025-06-01T12:00:00Z",
  "goVersion": "go1.26.8",
  "platform": "linux/amd64"
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, stdout, stderr := iostreams.Test()
			tt.opts.IO = ios
			if err := versionRun(&tt.opts); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", stdout, tt.want)
			}
			if stderr.Len() != 0 {
				t.Errorf("unexpected stderr %q", stderr)
			}
			if tt.opts.JSON {
				var back Info
				if err := json.Unmarshal(stdout.Bytes(), &back); err != nil || back != tt.opts.Info {
					t.Errorf("JSON does not round-trip: %v %+v", err, back)
				}
			}
		})
	}
}

func TestCurrentDefaultsToDev(t *testing.T) {
	// Test binaries are built without -ldflags and report "dev" unless the
	// toolchain recorded a module version.
	if v := Current().Version; v == "" {
		t.Error("Version must never be empty")
	}
}
