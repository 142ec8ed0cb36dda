package test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/test/tfharness"
)

// TestTerraformFmt fails when any .tf or .tftest.hcl file is not in canonical format.
func TestTerraformFmt(t *testing.T) {
	t.Parallel()
	h := tfharness.New(t)
	root := repoRoot(t)
	for _, dir := range []string{"terraform", "test/fixtures"} {
		if out, err := h.Run(testContext(t), root, "fmt", "-check", "-recursive", "-diff", "-no-color", dir); err != nil {
			t.Errorf("terraform fmt found unformatted files under %s (run: terraform fmt -recursive %s):\n%s", dir, dir, out)
		}
	}
}

// TestTerraformValidate runs init and validate on every module, example and test fixture,
// each in its own copy so that parallel inits do not share a .terraform folder.
func TestTerraformValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("terraform init and validate of every folder take a minute or more; skipped under -short")
	}
	t.Parallel()
	h := tfharness.New(t)
	root := repoRoot(t)
	var dirs []string
	dirs = append(dirs, terraformDirs(t, root, "terraform/modules")...)
	dirs = append(dirs, terraformDirs(t, root, "terraform/examples")...)
	fixtures := terraformDirs(t, root, "test/fixtures")
	dirs = append(dirs, fixtures...)
	for _, rel := range dirs {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			t.Parallel()
			var dir string
			if slices.Contains(fixtures, rel) {
				dir = copyFixture(t, root, filepath.Base(rel))
			} else {
				dir = tfharness.CopyToTemp(t, root, rel)
			}
			ctx := testContext(t)
			if _, err := h.Run(ctx, dir, "init", "-backend=false", "-input=false", "-no-color"); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Run(ctx, dir, "validate", "-no-color"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTerraformModuleTests runs each module's tests/*.tftest.hcl (mock_provider, plan only).
func TestTerraformModuleTests(t *testing.T) {
	if testing.Short() {
		t.Skip("terraform test in every module takes a minute or more; skipped under -short")
	}
	t.Parallel()
	h := tfharness.New(t)
	if v, err := h.Version(testContext(t)); err != nil {
		t.Fatal(err)
	} else if !atLeast(v, 1, 11) {
		// override_during = plan in the mock providers needs 1.11.
		testutil.MissingTool(t, "terraform %s is older than 1.11, which the module tests need; %s", v, testutil.InstallTerraform)
	}
	root := repoRoot(t)
	for _, rel := range terraformDirs(t, root, "terraform/modules") {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			t.Parallel()
			tests, _ := filepath.Glob(filepath.Join(root, rel, "tests", "*.tftest.hcl"))
			if len(tests) == 0 {
				t.Fatalf("%s has no tests/*.tftest.hcl", rel)
			}
			dir := tfharness.CopyToTemp(t, root, rel)
			ctx := testContext(t)
			if _, err := h.Run(ctx, dir, "init", "-backend=false", "-input=false", "-no-color"); err != nil {
				t.Fatal(err)
			}
			out, err := h.Run(ctx, dir, "test", "-no-color")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", rel, lastLine(out))
		})
	}
}

// TestTerraformReadmeTables checks that every module's and example's README lists exactly
// its variables and outputs, with the same descriptions, types and defaults.
func TestTerraformReadmeTables(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var dirs []string
	dirs = append(dirs, terraformDirs(t, root, "terraform/modules")...)
	dirs = append(dirs, terraformDirs(t, root, "terraform/examples")...)
	for _, rel := range dirs {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(root, rel)
			vars, outs := parseTerraformInterface(t, dir)
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatalf("reading README: %v", err)
			}
			inRows := markdownTable(string(readme), "## Inputs")
			outRows := markdownTable(string(readme), "## Outputs")
			compareTable(t, "input", inRows, vars, 5)
			compareTable(t, "output", outRows, outs, 2)
		})
	}
}

func TestMarkdownTable(t *testing.T) {
	doc := "# x\n\n## Inputs\n\n| Name | Description |\n|---|---|\n| `a` | first |\n| `b` | second, with `code` |\n\nText.\n\n## Outputs\n\n| Name | Description |\n|--|--|\n| `o` | out |\n"
	in := markdownTable(doc, "## Inputs")
	if len(in) != 2 || in[0][0] != "a" || in[1][1] != "second, with `code`" {
		t.Errorf("inputs = %q", in)
	}
	if out := markdownTable(doc, "## Outputs"); len(out) != 1 || out[0][0] != "o" {
		t.Errorf("outputs = %q", out)
	}
	if missing := markdownTable(doc, "## Nope"); missing != nil {
		t.Errorf("missing heading gave %q", missing)
	}
}

// row is what the README must say about one variable or output: name, description and,
// for variables, type, default and whether it is required.
type row []string

// parseTerraformInterface reads variable and output blocks from every .tf file in dir.
func parseTerraformInterface(t *testing.T, dir string) (vars, outs map[string]row) {
	t.Helper()
	vars, outs = map[string]row{}, map[string]row{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %v", path, diags)
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if len(b.Labels) != 1 {
				continue
			}
			name := b.Labels[0]
			desc := literalString(t, b.Body.Attributes["description"])
			switch b.Type {
			case "variable":
				typ := sourceText(src, b.Body.Attributes["type"])
				def, required := "n/a", "yes"
				if a, ok := b.Body.Attributes["default"]; ok {
					def, required = sourceText(src, a), "no"
				}
				vars[name] = row{name, desc, typ, def, required}
			case "output":
				outs[name] = row{name, desc}
			}
		}
	}
	return vars, outs
}

func literalString(t *testing.T, a *hclsyntax.Attribute) string {
	t.Helper()
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		t.Fatalf("description at %s is not a literal string", a.SrcRange)
	}
	return v.AsString()
}

func sourceText(src []byte, a *hclsyntax.Attribute) string {
	if a == nil {
		return ""
	}
	r := a.Expr.Range()
	return strings.Join(strings.Fields(string(src[r.Start.Byte:r.End.Byte])), " ")
}

// markdownTable returns the cells of the first table after heading, with backticks around
// whole cells removed. It returns nil when the heading is missing.
func markdownTable(doc, heading string) [][]string {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return nil
	}
	var rows [][]string
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(doc[i+len(heading)+2:]))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if inTable || strings.HasPrefix(line, "#") {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j, c := range cells {
			c = strings.TrimSpace(c)
			if len(c) >= 2 && strings.HasPrefix(c, "`") && strings.HasSuffix(c, "`") && strings.Count(c, "`") == 2 {
				c = c[1 : len(c)-1]
			}
			cells[j] = c
		}
		if strings.Trim(cells[0], "-: ") == "" || cells[0] == "Name" {
			continue // separator or header
		}
		rows = append(rows, cells)
	}
	return rows
}

func compareTable(t *testing.T, kind string, rows [][]string, want map[string]row, width int) {
	t.Helper()
	got := map[string][]string{}
	for _, r := range rows {
		if len(r) != width {
			t.Errorf("README %s row %q has %d columns, want %d", kind, r, len(r), width)
			continue
		}
		if _, dup := got[r[0]]; dup {
			t.Errorf("README lists %s %q twice", kind, r[0])
		}
		got[r[0]] = r
	}
	for _, name := range sortedKeys(want) {
		r, ok := got[name]
		if !ok {
			t.Errorf("README is missing %s %q: add | %s |", kind, name, strings.Join(want[name], " | "))
			continue
		}
		for j := range want[name] {
			if r[j] != want[name][j] {
				t.Errorf("README %s %q column %d = %q, want %q", kind, name, j+1, r[j], want[name][j])
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("README lists %s %q that the .tf files do not declare", kind, name)
		}
	}
}

func sortedKeys(m map[string]row) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// atLeast reports whether version (like "1.11.4") is at least major.minor.
func atLeast(version string, major, minor int) bool {
	var ma, mi int
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	for _, p := range []struct {
		s string
		n *int
	}{{parts[0], &ma}, {parts[1], &mi}} {
		for _, c := range p.s {
			if c < '0' || c > '9' {
				return false
			}
			*p.n = *p.n*10 + int(c-'0')
		}
	}
	return ma > major || (ma == major && mi >= minor)
}

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{{"1.11.4", true}, {"1.11.0", true}, {"1.10.9", false}, {"2.0.0", true}, {"0.15.5", false}, {"bad", false}, {"1.x", false}} {
		if got := atLeast(tt.v, 1, 11); got != tt.want {
			t.Errorf("atLeast(%q, 1, 11) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func lastLine(s string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	return string(lines[len(lines)-1])
}
