package cmdutil

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// columnGap separates aligned columns on a terminal.
const columnGap = "  "

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TablePrinter prints rows of fields. On a terminal it prints a bold
// upper-case header and aligned columns; otherwise it prints no header and
// one tab-separated line per row, so that `cut -f` and `awk -F'\t'` work.
//
//	tp := cmdutil.NewTablePrinter(ios)
//	tp.SetHeader("ID", "PING STATUS")
//	tp.AddRow("i-0123", cs.Green("Online"))
//	return tp.Render()
type TablePrinter struct {
	out    io.Writer
	isTTY  bool
	cs     *iostreams.ColorScheme
	header []string
	rows   [][]string
}

// NewTablePrinter returns a TablePrinter that writes to ios.Out.
func NewTablePrinter(ios *iostreams.IOStreams) *TablePrinter {
	return &TablePrinter{out: ios.Out, isTTY: ios.IsStdoutTTY(), cs: ios.ColorScheme()}
}

// SetHeader sets the column names, printed only on a terminal.
func (t *TablePrinter) SetHeader(columns ...string) { t.header = columns }

// AddRow adds a row. Fields may contain colour sequences; they do not count
// towards column widths.
func (t *TablePrinter) AddRow(fields ...string) { t.rows = append(t.rows, fields) }

// Render writes the table.
func (t *TablePrinter) Render() error {
	var b strings.Builder
	if !t.isTTY {
		for _, row := range t.rows {
			for i, f := range row {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(plainField(f))
			}
			b.WriteByte('\n')
		}
		return t.write(b.String())
	}

	rows := t.rows
	if len(t.header) > 0 {
		header := make([]string, len(t.header))
		for i, h := range t.header {
			header[i] = t.cs.Bold(strings.ToUpper(h))
		}
		rows = append([][]string{header}, rows...)
	}
	var widths []int
	for _, row := range rows {
		for i, f := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(f))
		}
	}
	for _, row := range rows {
		for i, f := range row {
			b.WriteString(f)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(f)))
				b.WriteString(columnGap)
			}
		}
		b.WriteByte('\n')
	}
	return t.write(b.String())
}

func (t *TablePrinter) write(s string) error {
	if _, err := io.WriteString(t.out, s); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

// displayWidth counts the runes a terminal shows, ignoring colour codes.
func displayWidth(s string) int {
	return utf8.RuneCountInString(ansiRE.ReplaceAllString(s, ""))
}

// plainField keeps a field on one line and inside one column.
func plainField(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}
