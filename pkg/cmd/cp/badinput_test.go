package cp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmd/root"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// TestBadInputExitCodes: bad input to the session commands gets one clear
// error line and exit status 2 (usage) or 1 (failure), before anything
// reaches AWS (the endpoint here is a closed port).
func TestBadInputExitCodes(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{args: []string{"cp", "a", "b"}, code: 2, want: "neither side names a node"},
		{args: []string{"cp", "a", "web:"}, code: 2, want: "empty target or path"},
		{args: []string{"cp", "./no/such/file", "web-1:/tmp/"}, code: 1, want: "./no/such/file: no such file or directory"},
		{args: []string{"forward", "i-0123456789abcdef0", "80"}, code: 2, want: "is not [bind:]local-port:[host:]remote-port"},
		{args: []string{"forward", "i-0123456789abcdef0", "x:1:2"}, code: 2, want: "not an IP address or localhost"},
		{args: []string{"ssh", "@web"}, code: 2, want: "is not user@target"},
		{args: []string{"ssh", "web", "--", "uptime"}, code: 2, want: "need a user"},
		{args: []string{"plugin", "x", "y", "z"}, code: 2, want: "expected the AWS CLI's arguments"},
		{args: []string{"plugin", "{bad", "r", "StartSession", ""}, code: 2, want: "not JSON"},
		{args: []string{"exec", "web"}, code: 2, want: "no command given"},
		{args: []string{"start", "a", "b"}, code: 2, want: "accepts at most 1 arg"},
		{args: []string{"start", "tag:oops"}, code: 2, want: `"tag:oops" is not tag:KEY=VALUE`},
		{args: []string{"start"}, code: 2, want: "no target given"}, // not a terminal
	} {
		ios, _, _, stderr := iostreams.Test()
		f := root.NewFactory(ios, func(string) string { return "" })
		code := root.Execute(context.Background(), f, root.NewCmdRoot(f), append([]string{"--endpoint-url", "http://127.0.0.1:1"}, tt.args...))
		out := stderr.String()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		wantLines := 1
		if tt.code == 2 {
			wantLines = 2 // the error, then the pointer to --help
		}
		if code != tt.code || !strings.HasPrefix(out, "error: ") || !strings.Contains(lines[0], tt.want) || len(lines) != wantLines {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and one error line with %q", tt.args, code, out, tt.code, tt.want)
		}
	}
}
