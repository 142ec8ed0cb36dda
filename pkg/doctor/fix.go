package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// A fix that is a command is printed as a command line a user can paste
// into a POSIX shell (`aws …` or `ssmkit …`), and `doctor --fix` runs the
// same text: it splits it with SplitCommand and calls the SDK (RunFix),
// never a shell. Tests run the printed text with the real AWS CLI too, so
// a typo in it fails a test.

// cmd builds a command line from its arguments, quoting each for a POSIX
// shell where needed.
func cmd(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteArg(a)
	}
	return strings.Join(q, " ")
}

// jsonArg renders v as compact JSON for a command-line argument.
func jsonArg(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "{}"
	}
	return strings.TrimSpace(b.String())
}

// quoteArg quotes s for a POSIX shell: as it is when it holds only safe
// characters, else in single quotes (a ' inside becomes '\”).
func quoteArg(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ErrBadCommand is wrapped by SplitCommand's errors.
var ErrBadCommand = errors.New("not a command line")

// SplitCommand splits a command line the way a POSIX shell splits words:
// single quotes, double quotes (with \" \\ \$ \` escapes) and backslash
// escapes. Anything a shell would treat specially (;, |, &, <, >, $, `,
// globs, a newline) outside quotes is refused: fixes are single commands.
func SplitCommand(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote in %q", ErrBadCommand, line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				} else if line[i] == '$' || line[i] == '`' {
					return nil, fmt.Errorf("%w: expansion inside double quotes in %q", ErrBadCommand, line)
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("%w: unterminated double quote in %q", ErrBadCommand, line)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("%w: trailing backslash in %q", ErrBadCommand, line)
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte(";|&<>$`*?[]{}()~#!\n\r", c) >= 0:
			return nil, fmt.Errorf("%w: %q has shell syntax (%q) outside quotes", ErrBadCommand, line, c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	return args, nil
}

// run sets the commands that fix the check, and the fix text: the
// commands joined with " && ", followed by note (an alternative, such as
// the Terraform module that does the same) when given.
func (c Check) run(note string, commands ...string) Check {
	c.Commands = append([]string(nil), commands...)
	c.Fix = strings.Join(commands, " && ")
	if note != "" {
		if c.Fix != "" {
			c.Fix += " — or " + note
		} else {
			c.Fix = note
		}
	}
	return c
}

// FixNote is the part of the fix text that is not the commands (an
// alternative or advice), for printing the commands on their own lines.
func (c Check) FixNote() string {
	if len(c.Commands) == 0 {
		return c.Fix
	}
	return strings.TrimPrefix(strings.TrimPrefix(c.Fix, strings.Join(c.Commands, " && ")), " — or ")
}

// FixStep is one command `doctor --fix` runs, with the checks it fixes
// ("i-0123… network.nacl").
type FixStep struct {
	Command string   `json:"command"`
	Fixes   []string `json:"fixes"`
}

// FixPlan lists the commands of every failing check of r, in report
// order, each once: what `doctor --fix` shows and runs. Warnings are left
// alone, and checks whose fix is advice have no command.
func FixPlan(r Report) []FixStep {
	var steps []FixStep
	index := map[string]int{}
	for _, inst := range r.Instances {
		for _, c := range inst.Checks {
			if c.Status != Fail {
				continue
			}
			for _, line := range c.Commands {
				i, ok := index[line]
				if !ok {
					i = len(steps)
					index[line] = i
					steps = append(steps, FixStep{Command: line})
				}
				steps[i].Fixes = append(steps[i].Fixes, inst.ID+" "+c.ID)
			}
		}
	}
	return steps
}
