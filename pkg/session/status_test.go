package session

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestStatusCommandAndWriter(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, tt := range []struct {
		command string
		out     string
		code    int
	}{
		{command: "echo out; echo err >&2; exit 7", out: "out\nerr\n", code: 7},
		{command: "printf abc", out: "abc", code: 0},
		{command: "printf 'no newline'; false", out: "no newline", code: 1},
		{command: "echo \"it's\" # a comment", out: "it's\n", code: 0},
		{command: "# only a comment", out: "", code: 0},
	} {
		wrapped, marker := StatusCommand(tt.command)
		// The agent splits the command line shell-style; sh -c gets one
		// argument either way.
		raw, err := exec.Command(sh, "-c", wrapped+" 2>&1").Output()
		if err != nil {
			t.Fatalf("%q: %v", tt.command, err)
		}
		// Every split of the output into writes gives the same result.
		for chunk := 1; chunk <= len(raw); chunk++ {
			var got bytes.Buffer
			w := NewStatusWriter(&got, marker)
			for i := 0; i < len(raw); i += chunk {
				w.Write(raw[i:min(i+chunk, len(raw))])
			}
			code, err := w.Close()
			if err != nil || code != tt.code || got.String() != tt.out {
				t.Fatalf("%q in chunks of %d: %q, status %d, %v; want %q, %d", tt.command, chunk, got.String(), code, err, tt.out, tt.code)
			}
		}
	}
	// Without a status line everything passes, and the status is unknown.
	var got bytes.Buffer
	w := NewStatusWriter(&got, "__m__=")
	w.Write([]byte("line\n__m"))
	if code, _ := w.Close(); code != NoExitCode || got.String() != "line\n__m" {
		t.Errorf("%q %d", got.String(), code)
	}
	if _, m := StatusCommand("x"); !strings.HasPrefix(m, "__ssmkit_status_") {
		t.Errorf("marker %q", m)
	}
}
