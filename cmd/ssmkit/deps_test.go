package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestCode: the shipped binary must not link the testing
// package (it registers test flags and drags test-only code in) nor any of
// the repository's test-support packages.
func TestBinaryLinksNoTestCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps printed only %d packages: %q", len(deps), out)
	}
	for _, p := range deps {
		if bad := testCode(p); bad != "" {
			t.Errorf("ssmkit links %s (%s)", p, bad)
		}
	}
}

// testCode says why a package path is test code, or "" if it is not.
func testCode(path string) string {
	const module = "github.com/ssmkit/ssmkit/"
	switch {
	case path == "testing" || strings.HasPrefix(path, "testing/"):
		return "the standard library's testing packages"
	case strings.HasPrefix(path, module+"internal/testutil"):
		return "test helpers"
	case strings.HasPrefix(path, module) && strings.HasSuffix(path, "test"):
		return "a test-support package"
	}
	return ""
}

func TestTestCode(t *testing.T) {
	for path, want := range map[string]bool{
		"testing": true, "testing/synctest": true, "testing/iotest": true,
		"github.com/ssmkit/ssmkit/internal/testutil":                    true,
		"github.com/ssmkit/ssmkit/internal/testutil/motoserver":         true,
		"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest":              true,
		"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest": true,
		"github.com/ssmkit/ssmkit/internal/moto":                        false,
		"github.com/ssmkit/ssmkit/pkg/cmd/root":                         false,
		"net/http/httptest":                                             false, // not linked today; not test-only by name here
		"testingfoo":                                                    false,
	} {
		if got := testCode(path) != ""; got != want {
			t.Errorf("testCode(%s) = %v, want %v", path, got, want)
		}
	}
}
