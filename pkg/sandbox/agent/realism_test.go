package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// The emulated agent against the real one, difference by difference (the
// sandbox README's table): each test pins the decision.

// TestTerminalIsZeroUntilSized: like the real agent (pty.Start without a
// size), a shell's terminal is 0×0 until the client sends a size.
func TestTerminalIsZeroUntilSized(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	for i, doc := range []wire.SessionDocument{
		shellDoc(wire.SessionInputs{}),
		docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"stty size; read x; stty size","runAsElevated":false}}`),
	} {
		sid := "size-0a1b2c3d4e5f6000" + string(rune('1'+i))
		ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
		if doc.SessionType == ssmdoc.SessionTypeStandardStream {
			if _, err := ch.Write([]byte("stty size\n")); err != nil {
				t.Fatal(err)
			}
		}
		out.waitFor(t, "0 0", 10*time.Second)
		if err := ch.SendSize(100, 40); err != nil {
			t.Fatal(err)
		}
		// The size applies before the next input (Size is handled in order).
		if _, err := ch.Write([]byte("stty size\n")); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, "40 100", 10*time.Second)
		_, _ = ch.Write([]byte("exit\n"))
		waitClosed(t, ch)
	}
}

// TestOutputBytesAreExact: the real agent drops up to 3 trailing bytes that
// are not valid UTF-8 at the end of output; the emulated one sends every
// byte (ssmkit users want exact bytes: binary output, cut multi-byte
// characters).
func TestOutputBytesAreExact(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "bytes-0a1b2c3d4e5f60001"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"printf 'end\\377\\376\\342\\202'","runAsElevated":false}}`)
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	waitClosed(t, ch)
	<-out.done // the collector may not have taken the last output yet when the channel closes
	if got := out.String(); !strings.HasSuffix(got, "end\xff\xfe\xe2\x82") {
		t.Errorf("output %q, want it to end with the 4 raw bytes", got)
	}
}

// TestNoPacing: the real agent sends at most 1 KiB per message with 1 ms
// sleeps; the emulated one sends larger messages, as fast as the data
// channel takes them (the performance work measures it at machine speed).
func TestNoPacing(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "pace-0a1b2c3d4e5f60001"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"head -c 262144 /dev/zero | tr '\\000' x; echo; echo done-pacing","runAsElevated":false}}`)
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	out.waitFor(t, "done-pacing", 15*time.Second)
	waitClosed(t, ch)
	if n := f.session(sid).maxOutput.Load(); n <= 1024 {
		t.Errorf("largest output message %d bytes: paced like the real agent", n)
	}
}

// TestFirstOutputDelay: off by default; Config.FirstOutputDelay holds the
// first output back as the real agent's 1 s initial read delay does.
func TestFirstOutputDelay(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	const delay = 400 * time.Millisecond
	startAgent(t, f, func(c *Config) { c.FirstOutputDelay = delay })
	sid := "delay-0a1b2c3d4e5f60001"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"echo first-output","runAsElevated":false}}`)
	start := time.Now()
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	out.waitFor(t, "first-output", 10*time.Second)
	// A lower bound only: a slow machine cannot make it fail.
	if d := time.Since(start); d < delay {
		t.Errorf("first output after %v, want at least %v", d, delay)
	}
	waitClosed(t, ch)
}
