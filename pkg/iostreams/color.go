package iostreams

// ANSI SGR sequences. Only the basic 8 colours are used so that every
// terminal theme renders them.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiGray   = "\x1b[90m"
)

// ColorScheme renders text styles and status icons, or plain text when
// colour is disabled. The icons are the same with and without colour so
// that non-TTY output stays greppable.
type ColorScheme struct {
	enabled bool
}

func (c *ColorScheme) wrap(code, s string) string {
	if !c.enabled || s == "" {
		return s
	}
	return code + s + ansiReset
}

// Bold renders s in bold.
func (c *ColorScheme) Bold(s string) string { return c.wrap(ansiBold, s) }

// Gray renders s in a dim gray, for secondary information.
func (c *ColorScheme) Gray(s string) string { return c.wrap(ansiGray, s) }

// Green renders s in green.
func (c *ColorScheme) Green(s string) string { return c.wrap(ansiGreen, s) }

// Yellow renders s in yellow.
func (c *ColorScheme) Yellow(s string) string { return c.wrap(ansiYellow, s) }

// Red renders s in red.
func (c *ColorScheme) Red(s string) string { return c.wrap(ansiRed, s) }

// SuccessIcon is a green ✓.
func (c *ColorScheme) SuccessIcon() string { return c.Green("✓") }

// WarningIcon is a yellow !.
func (c *ColorScheme) WarningIcon() string { return c.Yellow("!") }

// FailureIcon is a red X.
func (c *ColorScheme) FailureIcon() string { return c.Red("X") }
