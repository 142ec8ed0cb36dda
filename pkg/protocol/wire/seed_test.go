package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSeedCorpus regenerates testdata/fuzz from the golden vectors
// when SSMKIT_WRITE_FUZZ_SEEDS=1. The committed corpus is what `go test`
// runs as regression inputs for every fuzz target.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("SSMKIT_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set SSMKIT_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz")
	}
	write := func(target, name string, b []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range loadVectors(t) {
		frame := mustHex(t, v.Hex)
		if v.WebsocketFrame == "text" {
			write("FuzzOpenDataChannel", v.Name, frame)
			continue
		}
		write("FuzzDecode", v.Name, frame)
		m, err := Decode(frame)
		if err != nil {
			t.Fatal(err)
		}
		target := ""
		switch {
		case m.MessageType == TypeAcknowledge:
			target = "FuzzAcknowledge"
		case m.MessageType == TypeChannelClosed:
			target = "FuzzChannelClosed"
		case m.MessageType == TypeAgentSessionState:
			target = "FuzzAgentSessionState"
		case m.PayloadType == PayloadSize:
			target = "FuzzSize"
		case m.PayloadType == PayloadHandshakeRequest:
			target = "FuzzHandshakeRequest"
		case m.PayloadType == PayloadHandshakeResponse:
			target = "FuzzHandshakeResponse"
		case m.PayloadType == PayloadHandshakeComplete:
			target = "FuzzHandshakeComplete"
		case m.PayloadType == PayloadEncChallengeResponse:
			target = "FuzzEncChallenge"
		case m.PayloadType == PayloadFlag:
			target = "FuzzFlagAndExitCode"
		}
		if target != "" {
			write(target, v.Name, m.Payload)
		}
	}
	// Hand-made malformed inputs.
	write("FuzzDecode", "short", []byte("\x00\x00\x00\x74input_stream_data"))
	write("FuzzDecode", "header_past_end", append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 130)...))
	write("FuzzHandshakeResponse", "not_json", []byte("not json"))
	write("FuzzHandshakeRequest", "wrong_types", []byte(`{"AgentVersion":3,"RequestedClientActions":{}}`))
}
