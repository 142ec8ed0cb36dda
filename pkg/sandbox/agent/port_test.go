package agent

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
	"github.com/xtaci/smux"
)

// echoServer is a TCP echo server that counts connections.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int32
	closed   chan int32 // connection number, when its client went away

	mu       sync.Mutex
	received map[int32]*bytes.Buffer // what each connection received
}

func (e *echoServer) got(n int32) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.received[n]; b != nil {
		return b.String()
	}
	return ""
}

// lockedWriter appends to a buffer under the server's lock.
type lockedWriter struct {
	e *echoServer
	b *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.b.Write(p)
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln, closed: make(chan int32, 64), received: map[int32]*bytes.Buffer{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := e.accepted.Add(1)
			rec := &bytes.Buffer{}
			e.mu.Lock()
			e.received[n] = rec
			e.mu.Unlock()
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, io.TeeReader(c, lockedWriter{e, rec}))
				_ = c.Close()
				e.closed <- n
			}()
		}
	}()
	return e
}

func (e *echoServer) port() string { return strconv.Itoa(e.ln.Addr().(*net.TCPAddr).Port) }

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	return p
}

// clientRWC presents the client data channel to a smux client.
type clientRWC struct{ ch *datachannel.Channel }

func (c clientRWC) Read(b []byte) (int, error)  { return c.ch.Read(b) }
func (c clientRWC) Write(b []byte) (int, error) { return c.ch.Write(b) }
func (c clientRWC) Close() error                { return nil }

// smuxClient is the client side of a mux-mode port session over ch (smux
// v1, keepalive off as a new client asks); it is closed when the test ends.
func smuxClient(t *testing.T, ch *datachannel.Channel) *smux.Session {
	t.Helper()
	cfg := smux.DefaultConfig()
	cfg.Version = 1
	cfg.KeepAliveDisabled = true
	mux, err := smux.Client(clientRWC{ch}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	return mux
}

func openPort(t *testing.T, f *fakeMGS, sid, props string, cfg datachannel.Config) (*datachannel.Channel, datachannel.SessionInfo) {
	t.Helper()
	f.startSession(sid, docWith(ssmdoc.SessionTypePort, props), "")
	ch := f.connectClient(t, sid, cfg)
	ctx, cancel := contextWithTimeout(15 * time.Second)
	defer cancel()
	info, err := ch.Handshake(ctx)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if info.SessionType != ssmdoc.SessionTypePort || !info.Handshake {
		t.Fatalf("handshake info %+v", info)
	}
	return ch, info
}

func TestPortMuxConcurrentConnections(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60100"
	ch, info := openPort(t, f, sid, `{"portNumber":"`+echo.port()+`","type":"LocalPortForwarding","localPortNumber":"0"}`, datachannel.Config{})
	if info.AgentVersion != DefaultAgentVersion {
		t.Errorf("agent version %q", info.AgentVersion)
	}
	mux := smuxClient(t, ch)

	const conns = 20
	size := 64 << 10
	if testing.Short() {
		size = 4 << 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := mux.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			want := make([]byte, size)
			_, _ = rand.Read(want)
			go func() { _, _ = st.Write(want) }()
			got := make([]byte, size)
			_ = st.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.ReadFull(st, got); err != nil {
				errs <- fmt.Errorf("stream %d: %w", st.ID(), err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("stream %d: echo differs", st.ID())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d connections × %d KiB echoed in %v", conns, size>>10, time.Since(start))
	if n := echo.accepted.Load(); n != conns {
		t.Errorf("echo server accepted %d connections, want %d", n, conns)
	}

	if err := ch.SendFlag(wire.FlagTerminateSession); err != nil {
		t.Fatal(err)
	}
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.TaskID != sid || tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
	sess := f.session(sid)
	if st := sess.waitState(t, time.Second); st != wire.SessionStateConnected {
		t.Fatalf("state %q", st)
	}
	select {
	case st := <-sess.states:
		t.Errorf("a port session sent %q", st)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestPortBasicModeOldClient(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60101"
	ch, _ := openPort(t, f, sid, `{"portNumber":"`+echo.port()+`","type":"LocalPortForwarding"}`, datachannel.Config{ClientVersion: "1.1.0"})
	out := collect(ch)

	if _, err := ch.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "first\n", 10*time.Second)
	if err := ch.SendFlag(wire.FlagDisconnectToPort); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-echo.closed:
		if n != 1 {
			t.Fatalf("connection %d closed, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DisconnectToPort did not close the destination connection")
	}
	if _, err := ch.Write([]byte("second\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "first\nsecond\n", 10*time.Second)
	if n := echo.accepted.Load(); n != 2 {
		t.Errorf("echo server accepted %d connections, want 2", n)
	}
	if err := ch.SendFlag(wire.FlagTerminateSession); err != nil {
		t.Fatal(err)
	}
	if tc := f.waitTaskComplete(t, 10*time.Second); tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

// TestPortBasicDataBeforeDisconnect sends data and DisconnectToPort back to
// back: the data must reach the first connection, not the second.
func TestPortBasicDataBeforeDisconnect(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	ch, _ := openPort(t, f, "alice-0a1b2c3d4e5f60102", `{"portNumber":"`+echo.port()+`","type":"LocalPortForwarding"}`, datachannel.Config{ClientVersion: "1.1.0"})
	for i := 1; i <= 3; i++ {
		msg := strings.Repeat(strconv.Itoa(i), 1000) + "\n"
		if _, err := ch.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := ch.SendFlag(wire.FlagDisconnectToPort); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-echo.closed:
			if n != int32(i) {
				t.Fatalf("connection %d closed, want %d", n, i)
			}
			if got := echo.got(n); got != msg {
				t.Fatalf("connection %d received %d bytes %.20q…, want %.20q…", n, len(got), got, msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d was not closed", i)
		}
	}
	if n := echo.accepted.Load(); n != 3 {
		t.Errorf("echo server accepted %d connections, want 3", n)
	}
}

func TestPortSSHStyleEndsWithDestination(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("SSH-2.0-fake\r\n"))
		_ = c.Close()
	}()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ch, _ := openPort(t, f, "alice-0a1b2c3d4e5f60103", `{"portNumber":"`+port+`"}`, datachannel.Config{})
	out := collect(ch)
	out.waitFor(t, "SSH-2.0-fake", 10*time.Second)
	if tc := f.waitTaskComplete(t, 10*time.Second); tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

// TestPortSSHStyleDeliversLastBytes: a destination that sends its last bytes and hangs up at
// once (an sshd closing after its final message) has every byte delivered to the client before
// the agent reports the task complete — after that the service closes the client's channel.
func TestPortSSHStyleDeliversLastBytes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	last := bytes.Repeat([]byte("bye."), 128<<10) // 512 KiB: within the client's receive buffer
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write(last)
		_ = c.Close()
	}()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ch, _ := openPort(t, f, "alice-0a1b2c3d4e5f60104", `{"portNumber":"`+port+`"}`, datachannel.Config{})
	if tc := f.waitTaskComplete(t, 20*time.Second); tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
	// Nothing has read the channel yet: all the client holds is in its receive buffer.
	if got := ch.Stats().Buffered; got != len(last) {
		t.Fatalf("when the task completed the client held %d of the destination's last %d bytes", got, len(last))
	}
}

func TestPortMuxConnectToPortError(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	pk := newPackets()
	ch, _ := openPort(t, f, "alice-0a1b2c3d4e5f60104", `{"portNumber":"`+closedPort(t)+`","type":"LocalPortForwarding"}`, datachannel.Config{OnControl: pk.handle})
	mux := smuxClient(t, ch)
	st, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st.Write([]byte("hello"))
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Read(make([]byte, 10)); err == nil {
		t.Error("the stream to a closed port stays open")
	}
	deadline := time.After(10 * time.Second)
	for {
		pk.mu.Lock()
		flags := append([]wire.Flag(nil), pk.flags...)
		pk.mu.Unlock()
		if len(flags) > 0 {
			if flags[0] != wire.FlagConnectToPortError {
				t.Fatalf("flags = %v", flags)
			}
			break
		}
		select {
		case <-pk.seen:
		case <-deadline:
			t.Fatal("no ConnectToPortError flag")
		}
	}
}

func TestPortRemoteHostDenied(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60105"
	openPort(t, f, sid, `{"portNumber":"80","host":"169.254.169.254","type":"LocalPortForwarding"}`, datachannel.Config{})
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.FinalTaskStatus != "Failed" || !strings.Contains(tc.Body.Output, "deny list") {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

func TestPortRemoteHost(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	ch, _ := openPort(t, f, "alice-0a1b2c3d4e5f60106", `{"portNumber":"`+echo.port()+`","host":"127.0.0.1","type":"LocalPortForwarding"}`, datachannel.Config{ClientVersion: "1.0.0.0"})
	out := collect(ch)
	if _, err := ch.Write([]byte("remote\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "remote\n", 10*time.Second)
}

// An old agent version is what clients see in the handshake (and why they
// pick basic port mode); the agent's own mode still follows the client.
func TestOldAgentVersionReported(t *testing.T) {
	t.Parallel()
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	startAgent(t, f, func(c *Config) { c.AgentVersion = "3.0.161.0" })
	ch, info := openPort(t, f, "alice-0a1b2c3d4e5f60107", `{"portNumber":"`+echo.port()+`","type":"LocalPortForwarding"}`,
		datachannel.Config{ClientVersion: "1.0.0.0"})
	if info.AgentVersion != "3.0.161.0" {
		t.Fatalf("agent version %q", info.AgentVersion)
	}
	out := collect(ch)
	if _, err := ch.Write([]byte("basic\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "basic\n", 10*time.Second)
}

// TestPortMuxHalfClosedDestination: the destination answers, half-closes
// (CloseWrite) and goes on reading what the client sends. Everything the
// client's stream accepted must reach it: the agent must not close the
// destination while its copy from the client still has data (the race of
// issue 13's TestSSHRun, on the agent's side).
func TestPortMuxHalfClosedDestination(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("greeting"))
		_ = c.(*net.TCPConn).CloseWrite()
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60150"
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ch, _ := openPort(t, f, sid, `{"portNumber":"`+port+`","type":"LocalPortForwarding","localPortNumber":"0"}`, datachannel.Config{})
	mux := smuxClient(t, ch)
	st, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// Queue a burst before the greeting can come back.
	payload := bytes.Repeat([]byte("u"), 256<<10)
	sent, werr := st.Write(payload)
	greeting, _ := io.ReadAll(st)
	_ = st.Close()
	if string(greeting) != "greeting" {
		t.Errorf("greeting %q", greeting)
	}
	select {
	case n := <-received:
		if n != int64(sent) {
			t.Errorf("the destination received %d of the %d bytes the client sent (write error %v)", n, sent, werr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the destination never saw the end of the client's data")
	}
}
