package cmdutil

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// PrintJSON writes v to ios.Out as JSON indented by two spaces, followed by
// a newline. Output is stable: struct fields keep declaration order and map
// keys are sorted. HTML characters are not escaped, so ARNs and commands
// stay readable. Nothing is written if v cannot be encoded.
func PrintJSON(ios *iostreams.IOStreams, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON output: %w", err)
	}
	if _, err := ios.Out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("writing JSON output: %w", err)
	}
	return nil
}
