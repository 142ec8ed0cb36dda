package cp

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

func TestSplitRemote(t *testing.T) {
	for _, tt := range []struct {
		in, target, path string
		remote           bool
	}{
		{"web-1:/tmp/x", "web-1", "/tmp/x", true},
		{"i-0123456789abcdef0:rel/path", "i-0123456789abcdef0", "rel/path", true},
		{"[fd00::1]:/etc/hosts", "fd00::1", "/etc/hosts", true},
		{"tag:Name=web:/x", "tag", "Name=web:/x", true},
		{"/abs/with:colon", "", "/abs/with:colon", false},
		{"./rel:colon", "", "./rel:colon", false},
		{"plain.txt", "", "", false},
	} {
		target, p, remote := splitRemote(tt.in)
		if remote != tt.remote || (remote && (target != tt.target || p != tt.path)) {
			t.Errorf("splitRemote(%q) = %q %q %v", tt.in, target, p, remote)
		}
	}
}

func TestNewCmdCp(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		want    CpOptions
		wantErr string
	}{
		{args: []string{"a.txt", "web:/tmp/"}, want: CpOptions{Upload: true, Local: "a.txt", Remote: "/tmp/", Target: cmdutil.Target{Arg: "web"}}},
		{args: []string{"-r", "web:/srv", "./out"}, want: CpOptions{Local: "./out", Remote: "/srv", Recursive: true, Target: cmdutil.Target{Arg: "web"}}},
		{args: []string{"a", "b"}, wantErr: "neither side names a node"},
		{args: []string{"w:a", "w:b"}, wantErr: "both sides are on nodes"},
		{args: []string{"a", "web:"}, wantErr: "empty target or path"},
		{args: []string{"a"}, wantErr: "accepts 2 arg"},
	} {
		ios, _, _, _ := iostreams.Test()
		var got *CpOptions
		cmd := NewCmdCp(&cmdutil.Factory{IOStreams: ios}, func(o *CpOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v", tt.args, err)
			}
			continue
		}
		if err != nil || got.Upload != tt.want.Upload || got.Local != tt.want.Local || got.Remote != tt.want.Remote ||
			got.Recursive != tt.want.Recursive || got.Target != tt.want.Target {
			t.Errorf("%q: %+v, %v", tt.args, got, err)
		}
	}
}

// TestScriptsParse: every script is valid sh, whatever the quotes in the
// paths.
func TestScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	weird := `/tmp/it's a "path" $(rm -rf /) ` + "`x`"
	for _, script := range []string{
		downloadScript(weird, true), downloadScript(weird, false),
		uploadScript(weird, "file", weird, 10), uploadScript(weird, "dir", "d", 10240),
	} {
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = bytes.NewReader([]byte(script))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v %s\n%s", err, out, script)
		}
		if !strings.Contains(script, `'/tmp/it'\''s a "path" $(rm -rf /) `+"`x`'") {
			t.Errorf("path not quoted:\n%s", script)
		}
	}
}

// TestProgressOnlyOnATerminal: the progress line is drawn on a terminal's
// standard error and nowhere else.
func TestProgressOnlyOnATerminal(t *testing.T) {
	for _, tty := range []bool{false, true} {
		ios, _, _, stderr := iostreams.Test()
		ios.SetStderrTTY(tty)
		p := newProgress(ios, "f", 100)
		p.Write(make([]byte, 60))
		p.finish()
		if got := stderr.String(); (got != "") != tty || (tty && !strings.Contains(got, " 60%")) {
			t.Errorf("tty %v: progress %q", tty, got)
		}
	}
}
