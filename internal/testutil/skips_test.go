package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// missingToolSkip matches a Skip whose reason is that something is not
// installed: those must go through MissingTool, so that CI fails on them.
var missingToolSkip = regexp.MustCompile(`\.Skipf?\(.*(?i:not installed|not found|not available|no moto|needs? moto|missing)`)

// TestNoBareSkipForMissingTools: every skip for a missing tool in the
// repository goes through MissingTool ($SSMKIT_CI=1 makes it a failure).
func TestNoBareSkipForMissingTools(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, ".go") || path == filepath.Join(root, "internal/testutil/skips_test.go") {
			return nil
		}
		n++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		prev := ""
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			// A skip right under `if testing.Short()` is a -short skip.
			short := strings.Contains(prev, "testing.Short()")
			prev = text
			if missingToolSkip.MatchString(text) && !short {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d skips for a missing tool; call testutil.MissingTool instead: %s", rel, line, strings.TrimSpace(text))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("read only %d Go files under %s", n, root)
	}
}
