package target

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sahilm/fuzzy"
	"golang.org/x/term"
)

// ErrPickCancelled is returned by Pick when the user leaves the picker
// (Esc, Ctrl-C, Ctrl-D) without choosing.
var ErrPickCancelled = errors.New("no target chosen")

// pickerRows is the most nodes the picker shows at once.
const pickerRows = 15

// Key bytes the picker understands.
const (
	keyCtrlC     = 0x03
	keyCtrlD     = 0x04
	keyCtrlJ     = 0x0a
	keyCtrlK     = 0x0b
	keyEnter     = 0x0d
	keyCtrlN     = 0x0e
	keyCtrlP     = 0x10
	keyCtrlU     = 0x15
	keyEsc       = 0x1b
	keyBackspace = 0x7f
	keyCtrlH     = 0x08
)

// Pick lets the user choose one of nodes on the terminal tty: typing
// filters the list (fuzzy, over name, ID, computer name, IP and platform),
// the arrow keys (or Ctrl-N/Ctrl-P) move, Enter chooses, Esc or Ctrl-C
// cancels with ErrPickCancelled. The list shows name, ID, platform, agent
// version and ping status. tty is put in raw mode for the duration; the
// picker draws on out (standard error, so that standard output stays
// clean) and erases itself when done.
func Pick(tty *os.File, out io.Writer, nodes []Node) (Node, error) {
	if len(nodes) == 0 {
		return Node{}, errorf(ErrNotFound, "there are no managed nodes in this account and region")
	}
	fd := int(tty.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return Node{}, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	defer func() { _ = term.Restore(fd, old) }()
	width := 100
	if w, _, err := term.GetSize(fd); err == nil && w > 20 {
		width = w
	}
	p := &picker{nodes: nodes, out: out, width: width, in: bufio.NewReader(tty)}
	p.filter()
	defer p.erase()
	return p.run()
}

type picker struct {
	nodes   []Node
	out     io.Writer
	in      *bufio.Reader
	width   int
	query   []rune
	shown   []int // indexes into nodes, best match first
	cursor  int
	columns []int
}

func (p *picker) run() (Node, error) {
	for {
		p.draw()
		b, err := p.in.ReadByte()
		if err != nil {
			return Node{}, ErrPickCancelled
		}
		switch b {
		case keyEnter, keyCtrlJ:
			if len(p.shown) > 0 {
				return p.nodes[p.shown[p.cursor]], nil
			}
		case keyCtrlC, keyCtrlD:
			return Node{}, ErrPickCancelled
		case keyEsc:
			if p.in.Buffered() == 0 {
				return Node{}, ErrPickCancelled // a lone Esc
			}
			p.escape()
		case keyCtrlN:
			p.move(1)
		case keyCtrlP, keyCtrlK:
			p.move(-1)
		case keyBackspace, keyCtrlH:
			if len(p.query) > 0 {
				p.query = p.query[:len(p.query)-1]
				p.filter()
			}
		case keyCtrlU:
			p.query = p.query[:0]
			p.filter()
		default:
			if b >= 0x20 && b < 0x7f {
				p.query = append(p.query, rune(b))
				p.filter()
			}
		}
	}
}

// escape handles the rest of an escape sequence: ESC [ A / ESC O A (up),
// B (down); others are skipped.
func (p *picker) escape() {
	b, err := p.in.ReadByte()
	if err != nil || (b != '[' && b != 'O') {
		return
	}
	for {
		c, err := p.in.ReadByte()
		if err != nil {
			return
		}
		switch c {
		case 'A':
			p.move(-1)
			return
		case 'B':
			p.move(1)
			return
		}
		if c >= 0x40 && c <= 0x7e {
			return // the final byte of another sequence
		}
	}
}

func (p *picker) move(d int) {
	if len(p.shown) == 0 {
		return
	}
	p.cursor = (p.cursor + d + len(p.shown)) % len(p.shown)
}

// nodeSource presents the nodes' searchable text to fuzzy.
type nodeSource []Node

func (s nodeSource) String(i int) string {
	n := s[i]
	return strings.Join([]string{n.Name, n.ID, n.ComputerName, n.IPAddress, n.PlatformName, n.PlatformType}, " ")
}

func (s nodeSource) Len() int { return len(s) }

func (p *picker) filter() {
	p.shown = p.shown[:0]
	if len(p.query) == 0 {
		for i := range p.nodes {
			p.shown = append(p.shown, i)
		}
	} else {
		for _, m := range fuzzy.FindFrom(string(p.query), nodeSource(p.nodes)) {
			p.shown = append(p.shown, m.Index)
		}
	}
	p.cursor = 0
}

// row formats one node as the picker's columns.
func row(n Node) []string {
	platform := strings.TrimSpace(n.PlatformName + " " + n.PlatformVersion)
	if platform == "" {
		platform = n.PlatformType
	}
	return []string{dash(n.DisplayName()), n.ID, dash(platform), dash(n.AgentVersion), dash(n.PingStatus)}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var pickerHeader = []string{"NAME", "ID", "PLATFORM", "AGENT", "PING"}

func (p *picker) widths() []int {
	if p.columns != nil {
		return p.columns
	}
	w := make([]int, len(pickerHeader))
	for i, h := range pickerHeader {
		w[i] = len(h)
	}
	for _, n := range p.nodes {
		for i, c := range row(n) {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	p.columns = w
	return w
}

func (p *picker) line(cells []string, mark string) string {
	w := p.widths()
	var b strings.Builder
	b.WriteString(mark)
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", w[i]-len([]rune(c))+2))
		}
	}
	s := []rune(b.String())
	if len(s) > p.width-1 {
		s = s[:p.width-1]
	}
	return string(s)
}

// draw renders the prompt line and the list under it, leaving the cursor
// at the end of the query. Lines are ended with \r\n: the terminal is raw.
func (p *picker) draw() {
	var b strings.Builder
	b.WriteString("\r\x1b[J")
	fmt.Fprintf(&b, "\r\n%s\r\n", p.line(pickerHeader, "  "))
	lines := 2
	start := 0
	if p.cursor >= pickerRows {
		start = p.cursor - pickerRows + 1
	}
	for i := start; i < len(p.shown) && i < start+pickerRows; i++ {
		mark := "  "
		if i == p.cursor {
			mark = "> "
		}
		b.WriteString(p.line(row(p.nodes[p.shown[i]]), mark) + "\r\n")
		lines++
	}
	fmt.Fprintf(&b, "  %d/%d nodes · ↑/↓ move · Enter choose · Esc cancel", len(p.shown), len(p.nodes))
	fmt.Fprintf(&b, "\x1b[%dA\r", lines)
	prompt := "Target> " + string(p.query)
	b.WriteString(prompt)
	_, _ = io.WriteString(p.out, b.String())
}

// erase clears what draw drew.
func (p *picker) erase() {
	_, _ = io.WriteString(p.out, "\r\x1b[J")
}
