package plugin

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
)

// TestParseArgsKeepsTheJSONError: a response or request that is not JSON is
// a usage error whose cause (the decoder's error) stays in the chain.
func TestParseArgsKeepsTheJSONError(t *testing.T) {
	noEnv := func(string) string { return "" }
	unset := func(string) error { return nil }
	good := `{"SessionId":"s-1","StreamUrl":"wss://x","TokenValue":"t"}`
	for name, args := range map[string][]string{
		"response": {"{not json", "us-east-1", "StartSession", "", `{"Target":"i-1"}`},
		"request":  {good, "us-east-1", "StartSession", "", "{not json"},
	} {
		_, err := ParseArgs(args, noEnv, unset)
		var syn *json.SyntaxError
		var fe *cmdutil.FlagError
		if !errors.As(err, &syn) || !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a usage error wrapping *json.SyntaxError", name, err)
		}
	}
}
