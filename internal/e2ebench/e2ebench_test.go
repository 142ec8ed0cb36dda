package e2ebench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ssmkit/ssmkit/internal/testutil"
)

// TestMain lets the test binary be an emulated agent child or a relay
// child of the relay chain, as the bench-e2e binary is.
func TestMain(m *testing.M) {
	if os.Getenv(blockEnv) == "1" {
		blockForever()
	}
	if len(os.Args) == 4 && os.Args[1] == AgentArg {
		if err := RunAgentChild(context.Background(), os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) == 3 && os.Args[1] == RelayArg {
		if err := RunRelayChild(context.Background(), os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRelayChain: the three relay processes pass every byte both ways:
// downloads, uploads (whose digest comes back) and echoes work through the
// chain.
func TestRelayChain(t *testing.T) {
	pat := newPattern(4)
	srv, err := startServer(pat)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	ch, err := startRelayChain(t.Context(), srv.addr(), []string{"GOMAXPROCS=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.stop()
	if len(ch.procs) != chainLen || ch.front == srv.addr() {
		t.Fatalf("%d relays in front of the server at %s, want %d", len(ch.procs), ch.front, chainLen)
	}
	if _, err := download(ch.front, pat, 8<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := upload(ch.front, pat, 8<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := parallel(4, 4<<20, func(n int64) (time.Duration, error) { return upload(ch.front, pat, n) }); err != nil {
		t.Fatal(err)
	}
	if ds, err := echo(ch.front, 20, 2); err != nil || len(ds) != 20 {
		t.Fatalf("echo: %d round trips, %v", len(ds), err)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "4KiB": 4096, "1000": 1000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1GB", "lots"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

func TestParseStats(t *testing.T) {
	log := "debug: session: data channel: sent 5 messages (1 resent), received 17226 (967 duplicates)\n"
	got := parseStats(log)
	if got == nil || *got != (channelStats{Sent: 5, Resent: 1, Received: 17226, Duplicates: 967}) {
		t.Fatalf("parseStats = %+v", got)
	}
	if parseStats("nothing here") != nil {
		t.Fatal("stats from a log without them")
	}
}

func TestSkipPluginBanner(t *testing.T) {
	out := "\r\nStarting session with SessionId: alice-0123\r\n$ "
	first := -1
	for i := range out {
		if !skipPluginBanner([]byte(out[:i+1])) {
			first = i
			break
		}
	}
	if first < 0 || out[first] != '$' {
		t.Fatalf("first shell byte at %d", first)
	}
	if skipPluginBanner([]byte("$")) {
		t.Fatal("a prompt without a banner was skipped")
	}
}

func TestPatternDigest(t *testing.T) {
	p := newPattern(1)
	var b bytes.Buffer
	if _, err := p.writeTo(&b, 3*patternLen+5); err != nil {
		t.Fatal(err)
	}
	if got := p.digest(3*patternLen + 5); got != sha256.Sum256(b.Bytes()) {
		t.Fatal("digest differs from the bytes written")
	}
}

// TestTransfersThroughServer: downloads, uploads and echoes against the
// traffic server are checked end to end, and corruption is caught.
func TestTransfersThroughServer(t *testing.T) {
	pat := newPattern(2)
	srv, err := startServer(pat)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	if _, err := download(srv.addr(), pat, 10<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := upload(srv.addr(), pat, 10<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := parallel(4, 4<<20, func(n int64) (time.Duration, error) { return download(srv.addr(), pat, n) }); err != nil {
		t.Fatal(err)
	}
	ds, err := echo(srv.addr(), 50, 5)
	if err != nil || len(ds) != 50 {
		t.Fatalf("echo: %d round trips, %v", len(ds), err)
	}
	// A server whose pattern differs is caught by the digest.
	other, err := startServer(newPattern(3))
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if _, err := download(other.addr(), pat, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("download of other bytes: %v, want ErrCorrupt", err)
	}
}

func TestRenderMarksTargets(t *testing.T) {
	f := newFigure("forward down, 1 conn", "MB/s", "%.1f")
	f.ratioTo = pathRaw
	f.targets = []target{atLeastRatio(pathSSMKit, pathRaw, 0.40)}
	for _, v := range []float64{600, 700, 800} {
		f.add(pathRaw, v)
	}
	for _, v := range []float64{300, 290, 310} {
		f.add(pathSSMKit, v)
	}
	g := newFigure("echo p50", "ms", "%.3f")
	g.targets = []target{atMost(pathSSMKit, 0.3, "ms")}
	g.add(pathSSMKit, 0.5)
	h := newFigure("official agent: upload", "MB/s", "%.1f")
	h.targets = []target{atLeast(pathOfficial, 50, "MB/s")}
	var out bytes.Buffer
	render(&out, []*figure{f, g, h}, "header")
	s := out.String()
	for _, want := range []string{"header", "700.0 (600.0–800.0)", "300.0", "0.43 × raw TCP", "met (1.07 × goal)", "NOT MET (1.67 × goal)", "not measured"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	vs := verdicts([]*figure{f, g, h})
	if len(vs) != 3 || !vs[0].met || vs[1].met || vs[2].ok {
		t.Fatalf("verdicts %+v", vs)
	}
}

// TestStalledTransferFails: a peer that accepts a transfer and then moves
// nothing fails it with "no progress" instead of hanging the bench.
func TestStalledTransferFails(t *testing.T) {
	old := stallTimeout
	stallTimeout = 200 * time.Millisecond
	t.Cleanup(func() { stallTimeout = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // never read from, never written to
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	pat := newPattern(5)
	if _, err := download(ln.Addr().String(), pat, 1<<20); err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Errorf("download from a silent peer: %v, want no progress", err)
	}
	// An upload fills the socket buffers, then its writes stall.
	if _, err := upload(ln.Addr().String(), pat, 256<<20); err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Errorf("upload to a peer that reads nothing: %v, want no progress", err)
	}
}

// blockEnv makes the test binary a client that hangs (blockForever).
const blockEnv = "E2EBENCH_TEST_BLOCK"

// blockForever stands in for a stalled client: it waits and never ends
// (a sleep, so the runtime does not call it a deadlock).
func blockForever() {
	fmt.Fprintln(os.Stderr, "blocking")
	for {
		time.Sleep(time.Hour)
	}
}

// TestDumpKeepsStacks: dump ends a hung client with SIGABRT and returns the
// goroutine stacks it printed — on stderr for ssmkit, on the pty for the
// plugin.
func TestDumpKeepsStacks(t *testing.T) {
	t.Run("ssmkit", func(t *testing.T) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), blockEnv+"=1")
		f := &ssmkitForward{cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
		cmd.Stderr = f.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait(); close(f.done) }()
		f.stderr.WaitFor(t, "blocking", 10*time.Second)
		if d := f.dump(); !strings.Contains(d, "goroutine 1 ") || !strings.Contains(d, "blockForever") {
			t.Errorf("dump = %q, want the goroutine stacks", d)
		}
	})
	t.Run("plugin", func(t *testing.T) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), blockEnv+"=1")
		f := &pluginForward{cmd: cmd, output: &testutil.SyncBuffer{}, done: make(chan struct{}), copied: make(chan struct{})}
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		f.tty, f.plugin = tty, cmd.Process.Pid
		go func() { _, _ = io.Copy(f.output, tty); close(f.copied) }()
		go func() { _ = cmd.Wait(); close(f.done) }()
		f.output.WaitFor(t, "blocking", 10*time.Second)
		if d := f.dump(); !strings.Contains(d, "goroutine 1 ") || !strings.Contains(d, "blockForever") {
			t.Errorf("dump = %q, want the goroutine stacks", d)
		}
	})
}

// pluginStacks is the shape of a session-manager-plugin 1.2.677.0
// goroutine dump, cut down to the frames pluginListenerGone looks at.
const pluginStacks = `goroutine 1 [semacquire]:
github.com/aws/session-manager-plugin/src/sessionmanagerplugin/session/portsession.(*MuxPortForwarding).ReadStream(...)

goroutine 21 [sleep]:
github.com/aws/session-manager-plugin/src/communicator.(*WebSocketChannel).StartPings.func1()
`

const pluginListener = `
goroutine 22 [IO wait]:
github.com/gorilla/websocket.(*Conn).ReadMessage(...)
github.com/aws/session-manager-plugin/src/communicator.(*WebSocketChannel).Open.func1()
`

func TestPluginListenerGone(t *testing.T) {
	for _, c := range []struct {
		name, dump string
		want       bool
	}{
		{"listener gone", pluginStacks, true},
		{"listener alive", pluginStacks + pluginListener, false},
		{"no stacks", "Starting session with SessionId: x\n", false},
		{"not the plugin", "goroutine 1 [running]:\nmain.main()\n", false},
	} {
		if got := pluginListenerGone(c.dump); got != c.want {
			t.Errorf("%s: pluginListenerGone = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRepeatPluginRace: a run that fails with errPluginListenerGone is
// repeated (and counted) at most maxPluginRepeats times; other errors are
// not repeated.
func TestRepeatPluginRace(t *testing.T) {
	b := &bench{cfg: Config{Log: io.Discard}}
	calls := 0
	_, err := repeatPluginRace(b, func() (int, error) {
		calls++
		if calls < 2 {
			return 0, fmt.Errorf("%w: stalled", errPluginListenerGone)
		}
		return 7, nil
	})
	if err != nil || calls != 2 || b.pluginRepeats != 1 {
		t.Errorf("one race then success: err %v, %d calls, %d repeats; want nil, 2, 1", err, calls, b.pluginRepeats)
	}
	calls = 0
	_, err = repeatPluginRace(b, func() (int, error) {
		calls++
		return 0, fmt.Errorf("%w: stalled", errPluginListenerGone)
	})
	if !errors.Is(err, errPluginListenerGone) || calls != maxPluginRepeats+1 {
		t.Errorf("always racing: err %v after %d calls, want errPluginListenerGone after %d", err, calls, maxPluginRepeats+1)
	}
	calls = 0
	other := errors.New("no progress")
	if _, err = repeatPluginRace(b, func() (int, error) { calls++; return 0, other }); err != other || calls != 1 {
		t.Errorf("other error: %v after %d calls, want it after 1", err, calls)
	}
}
