package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryKeepsDeadCodeElimination: nothing reachable in ssmkit may call
// methods by name through reflection (reflect.Value.Method, MethodByName —
// text/template does, so any template executed at run time does). The
// linker then has to keep every exported method of every type stored in an
// interface: all ~800 EC2 operations with their serializers and the like,
// 90 MB of binary instead of 31, and the runtime's start-up walks over the
// bigger tables cost every command ~8 MB of RSS (issue 12). The linker's
// dependency dump marks such functions <ReflectMethod>.
func TestBinaryKeepsDeadCodeElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("links the ssmkit binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	cmd := exec.Command(goBin, "build", "-ldflags=-dumpdep", "-o", filepath.Join(t.TempDir(), "ssmkit"), ".")
	var dump bytes.Buffer
	cmd.Stderr = &dump
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build -ldflags=-dumpdep: %v\n%s", err, lastLines(dump.String(), 5))
	}
	edges, reflective := reflectMethodCallers(dump.Bytes())
	if edges < 10000 {
		t.Fatalf("the linker's dependency dump has only %d edges; is -dumpdep still its flag?", edges)
	}
	for _, r := range reflective {
		t.Errorf("ssmkit reaches %s, which calls methods by name through reflection", r)
	}
}

// reflectMethodCallers reads the linker's -dumpdep output ("from -> to"
// lines, a reachable symbol's name followed by " <ReflectMethod>" when it
// calls methods by name) and returns the number of edges and the
// reflective callers, each with what reached it.
func reflectMethodCallers(dump []byte) (edges int, callers []string) {
	const mark = " <ReflectMethod>"
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(dump))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		edges++
		if name, found := strings.CutSuffix(to, mark); found && !seen[name] {
			seen[name] = true
			callers = append(callers, name+" (reached from "+strings.TrimSuffix(from, mark)+")")
		}
	}
	return edges, callers
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

func TestReflectMethodCallers(t *testing.T) {
	dump := []byte("main.main -> github.com/spf13/cobra.(*Command).Execute\n" +
		"github.com/spf13/cobra.tmpl.func1 -> text/template.(*state).evalField <ReflectMethod>\n" +
		"text/template.(*state).evalFieldChain -> text/template.(*state).evalField <ReflectMethod>\n" +
		"text/template.(*state).evalField <ReflectMethod> -> reflect.Value.MethodByName\n" +
		"not an edge\n")
	edges, callers := reflectMethodCallers(dump)
	if edges != 4 {
		t.Errorf("edges = %d, want 4", edges)
	}
	want := "text/template.(*state).evalField (reached from github.com/spf13/cobra.tmpl.func1)"
	if len(callers) != 1 || callers[0] != want {
		t.Errorf("callers = %q, want [%q]", callers, want)
	}
}
