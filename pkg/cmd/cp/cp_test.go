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
		{args: []string{"--parallel", "3", "a.txt", "web:/tmp/"}, want: CpOptions{Upload: true, Local: "a.txt", Remote: "/tmp/", Target: cmdutil.Target{Arg: "web"}, Parallel: 3}},
		{args: []string{"--parallel", "-1", "a.txt", "web:/tmp/"}, wantErr: "--parallel must be between 1 and 16"},
		{args: []string{"--parallel", "17", "a.txt", "web:/tmp/"}, wantErr: "--parallel must be between 1 and 16"},
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
			got.Recursive != tt.want.Recursive || got.Target != tt.want.Target || got.Parallel != tt.want.Parallel {
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
		partScript(weird, weird, "0123abcd", 2*partBlock, 10), finishScript(weird, weird, "0123abcd", ""),
		finishScript(weird, weird, "0123abcd", strings.Repeat("0", 64)),
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

// TestParallelism: the default number of upload sessions and the byte
// ranges they write: whole 1 MiB blocks (dd's seek unit), together the
// whole file, never an empty part.
func TestParallelism(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		kind string
		size int64
		flag int
		want int
	}{
		{"file", 0, 0, 1},
		{"file", 8*mib - 1, 0, 1},
		{"file", 16 * mib, 0, 2},
		{"file", 24*mib + 5, 0, 3},
		{"file", 256 * mib, 0, 4},
		{"file", 256 * mib, 1, 1},
		{"file", 256 * mib, 8, 8},
		{"file", 10, 4, 1},        // one block: one part
		{"file", 2*mib + 1, 4, 3}, // 1 MiB parts: 3 of them
		{"dir", 256 * mib, 4, 1},  // a tar stream
	} {
		src := &source{kind: tt.kind, size: tt.size}
		if got := parallelism(tt.flag, src); got != tt.want {
			t.Errorf("%s of %d bytes, --parallel %d: %d sessions, want %d", tt.kind, tt.size, tt.flag, got, tt.want)
		}
		if tt.kind != "file" {
			continue
		}
		var next int64
		for _, p := range splitParts(tt.size, parallelism(tt.flag, src)) {
			if p.off != next || p.off%partBlock != 0 || p.n <= 0 {
				t.Errorf("size %d: bad part %+v after %d", tt.size, p, next)
			}
			next = p.off + p.n
		}
		if next != tt.size {
			t.Errorf("size %d: parts cover %d bytes", tt.size, next)
		}
	}
}
