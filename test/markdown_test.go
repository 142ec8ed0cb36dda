package test

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// TestMarkdownRenders parses every Markdown file of the repository as
// GitHub renders it (CommonMark + GFM tables) and fails on what renders
// wrong: a code fence that is never closed or that swallows prose (a line
// that starts like a fence inside a code block: text after a closing
// fence), table rows cut off from their table by a paragraph, and
// relative links to files that do not exist.
func TestMarkdownRenders(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	if len(files) < 5 {
		t.Fatalf("found only %d Markdown files under %s", len(files), root)
	}
	for _, rel := range files {
		src, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range markdownProblems(root, rel, src) {
			t.Errorf("%s: %s", rel, p)
		}
	}
}

// markdownFiles lists the .md files under root, skipping dot folders
// (.git, .state) and testdata.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// markdownProblems renders src (the file rel under root) and returns what
// renders wrong, each with its line number.
func markdownProblems(root, rel string, src []byte) []string {
	md := goldmark.New(goldmark.WithExtensions(extension.Table))
	doc := md.Parser().Parse(text.NewReader(src))
	lineOf := func(offset int) int { return bytes.Count(src[:offset], []byte("\n")) + 1 }
	var problems []string
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.FencedCodeBlock:
			problems = append(problems, fenceProblems(n, src, lineOf)...)
		case *ast.Paragraph:
			// A table row in a paragraph: a paragraph (or a blank line)
			// cut it off from its table, so it renders as text.
			lines := n.Lines()
			for i := range lines.Len() {
				seg := lines.At(i)
				if l := strings.TrimSpace(string(seg.Value(src))); strings.HasPrefix(l, "|") && strings.Count(l, "|") >= 2 {
					problems = append(problems, fmt.Sprintf("line %d: a table row outside a table (a paragraph or blank line splits the table?): %.60q", lineOf(seg.Start), l))
					break
				}
			}
		case *ast.Link:
			if p := linkProblem(root, rel, string(n.Destination)); p != "" {
				problems = append(problems, p)
			}
		case *ast.Image:
			if p := linkProblem(root, rel, string(n.Destination)); p != "" {
				problems = append(problems, p)
			}
		}
		return ast.WalkContinue, nil
	})
	return problems
}

// fenceProblems checks that a fenced code block is closed and holds no line
// that looks like an attempt to close it.
func fenceProblems(n *ast.FencedCodeBlock, src []byte, lineOf func(int) int) []string {
	// The opening fence is the line before the first content line (or the
	// block's info segment).
	start := 0
	if n.Info != nil {
		start = n.Info.Segment.Start
	} else if n.Lines().Len() > 0 {
		start = n.Lines().At(0).Start - 1
	}
	lineStart := bytes.LastIndexByte(src[:max(start, 0)], '\n') + 1
	opening := strings.TrimLeft(string(src[lineStart:]), " ")
	fenceChar := opening[0]
	fenceLen := len(opening) - len(strings.TrimLeft(opening, string(fenceChar)))
	fence := strings.Repeat(string(fenceChar), 3)
	var problems []string
	lines := n.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		l := strings.TrimSpace(string(seg.Value(src)))
		if strings.HasPrefix(l, fence) {
			problems = append(problems, fmt.Sprintf("line %d: %q inside a code block: a closing fence must stand alone on its line, so the block runs on", lineOf(seg.Start), l))
		}
	}
	// Closed: the line after the content is a fence at least as long.
	end := lineStart
	if lines.Len() > 0 {
		end = lines.At(lines.Len() - 1).Stop
	} else {
		end = lineStart + bytes.IndexByte(src[lineStart:], '\n') + 1
	}
	rest := src[min(end, len(src)):]
	next, _, _ := strings.Cut(string(rest), "\n")
	next = strings.TrimSpace(next)
	if !strings.HasPrefix(next, strings.Repeat(string(fenceChar), fenceLen)) || strings.Trim(next, string(fenceChar)) != "" {
		problems = append(problems, fmt.Sprintf("line %d: code fence %s is never closed", lineOf(lineStart), strings.Repeat(string(fenceChar), fenceLen)))
	}
	return problems
}

// linkProblem returns why a relative link is broken, or "".
func linkProblem(root, rel, dest string) string {
	u, err := url.Parse(dest)
	if err != nil {
		return fmt.Sprintf("link %q does not parse: %v", dest, err)
	}
	if u.Scheme != "" || u.Host != "" || u.Path == "" {
		return "" // absolute URL, mailto:, or #fragment in the same file
	}
	target := filepath.Join(root, filepath.Dir(rel), filepath.FromSlash(u.Path))
	if !strings.HasPrefix(target, root+string(filepath.Separator)) && target != root {
		// Outside the repository (../shared/…): checked only when it is there.
		if _, err := os.Stat(target); err != nil {
			return ""
		}
	}
	if _, err := os.Stat(target); err != nil {
		return fmt.Sprintf("link to %s: no such file in the repository", dest)
	}
	return ""
}

// TestMarkdownProblemsFound: the checks find each kind of breakage (the
// README's fence with text after it, a table split by a paragraph, an
// unclosed fence, a broken link) and pass good Markdown.
func TestMarkdownProblemsFound(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "there.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src, want string
	}{
		{"good", "# T\n\n```sh\nmake\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n[x](there.md) [y](#t) [z](https://example.com/nope.md)\n", ""},
		{"text after closing fence", "```sh\nmake\n``` More text.\n\n## Install\n\n```sh\ngo install\n```\n", "inside a code block"},
		{"unclosed", "text\n\n```sh\nmake\n", "never closed"},
		{"tilde unclosed by backticks", "~~~\nmake\n```\n", "never closed"},
		{"split table", "| a | b |\n|---|---|\n| 1 | 2 |\n\nA note.\n| 3 | 4 |\n", "a table row outside a table"},
		{"broken link", "see [the guide](missing/guide.md#top)\n", "no such file"},
	} {
		got := strings.Join(markdownProblems(root, "doc.md", []byte(c.src)), "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %q, want %q", c.name, got, c.want)
		}
	}
}
