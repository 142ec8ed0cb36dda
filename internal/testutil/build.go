package testutil

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BuildSSMKit builds cmd/ssmkit into dir (a temporary directory when
// empty) and returns the binary's path, for tests that run ssmkit as a
// program (as a plugin, a ProxyCommand, a sandbox daemon).
func BuildSSMKit(tb testing.TB, dir string) string {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	bin := filepath.Join(dir, "ssmkit")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ssmkit/ssmkit/cmd/ssmkit").CombinedOutput()
	if err != nil {
		tb.Fatalf("building ssmkit: %v\n%s", err, out)
	}
	return bin
}
