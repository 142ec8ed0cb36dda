package exec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// TestExecAgainstSandboxDocuments runs exec against both forms of
// AWS-StartNonInteractiveCommand the sandbox can serve: with the
// separate-stream parameters (stdout and stderr apart, the agent's exit
// code), and without them, as AWS may (StartSession refuses the parameter;
// exec retries and still returns the status, with merged output).
func TestExecAgainstSandboxDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "exec-1"}}})
	clients := session.NewClients(sb.AWSConfig())
	// run takes the words after "--", as the command line does.
	run := func(t *testing.T, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ios, _, out, errOut := iostreams.Test()
		var lines []string
		opts := &ExecOptions{
			IO: ios, Target: cmdutil.Target{Arg: "exec-1"}, Command: JoinCommand(args),
			Clients: func(context.Context) (session.Clients, error) { return clients, nil },
			Logf:    func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) },
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := execRun(ctx, opts)
		var ec cmdutil.ExitCodeError
		switch {
		case errors.As(err, &ec):
			code = int(ec)
		case err != nil:
			t.Fatalf("exec: %v", err)
		}
		return out.String(), errOut.String() + strings.Join(lines, "\n"), code
	}
	const cmd = "echo out-1; echo err-1 >&2; printf 'no newline'; exit 7"

	t.Run("separate streams", func(t *testing.T) {
		sb.SetLegacyNonInteractiveDocument(false)
		stdout, stderr, code := run(t, cmd)
		if code != 7 || stdout != "out-1\nno newline" || !strings.Contains(stderr, "err-1\n") || strings.Contains(stderr, "retrying") {
			t.Fatalf("status %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("document without separateOutputStream", func(t *testing.T) {
		sb.SetLegacyNonInteractiveDocument(true)
		defer sb.SetLegacyNonInteractiveDocument(false)
		stdout, stderr, code := run(t, cmd)
		if code != 7 || stdout != "out-1\nerr-1\nno newline" {
			t.Fatalf("status %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "StartSession refused separateOutputStream") || !strings.Contains(stderr, "InvalidParameters") {
			t.Errorf("debug lines %q", stderr)
		}
		if stdout, _, code := run(t, "true"); code != 0 || stdout != "" {
			t.Errorf("true: status %d, stdout %q", code, stdout)
		}
	})
	// The agent runs the command without a shell (as the real one does):
	// several words arrive as the same words, shell syntax in one argument
	// goes through sh -c, and plain words need no shell.
	t.Run("words and shell syntax", func(t *testing.T) {
		sb.SetLegacyNonInteractiveDocument(false)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"printf", "%s|", "a  b", "$HOME", "it's", "*"}, "a  b|$HOME|it's|*|"},
			{[]string{"echo a-b | tr - +"}, "a+b\n"},
			{[]string{"X=1; echo \"$X\" > /dev/stderr; echo ok"}, "ok\n"},
			{[]string{"echo plain words"}, "plain words\n"},
		} {
			if stdout, stderr, code := run(t, tt.args...); code != 0 || stdout != tt.want {
				t.Errorf("%q: status %d, stdout %q (want %q), stderr %q", tt.args, code, stdout, tt.want, stderr)
			}
		}
	})
	// Nothing left behind, the refused StartSession included.
	sandboxtest.NoActiveSessions(t, sb)
}
