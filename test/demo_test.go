package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
)

// TestDemo runs the README's first command, scripts/demo.sh, against a
// freshly built binary: the demo must always pass.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ssmkit and starts a sandbox")
	}
	// Parallel: the demo waits on moto and the sandbox most of its time, and the Terraform tests
	// (all parallel) would otherwise start only after it ends.
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		testutil.MissingTool(t, "python3 (for moto) is not installed; %s", testutil.InstallMoto)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ssmkit")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ssmkit")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	demo := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "demo.sh"))
	demo.Dir = root
	demo.Env = append(os.Environ(), "SSMKIT="+bin)
	out, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "demo passed") {
		t.Fatalf("demo did not finish:\n%s", out)
	}
}
