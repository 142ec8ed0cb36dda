package agent

import (
	"context"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/xtaci/smux"
)

// TestCloseCleansUp runs alone (not parallel): it closes an agent with a
// live shell and a live port session and checks that the shell is killed
// and every goroutine the agent started has exited.
func TestCloseCleansUp(t *testing.T) {
	echo := newEchoServer(t)
	f := newFakeMGS(t)
	before := runtime.NumGoroutine()

	cfg := Config{InstanceID: instanceID, Endpoint: f.srv.URL, ReconnectDelay: 50 * time.Millisecond, WorkDir: t.TempDir()}
	a := New(cfg)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(context.Background()) }()
	<-f.ctlOpens

	ch, _, out := openShell(t, f, "leak-shell", shellDoc(wire.SessionInputs{}), datachannel.Config{})
	if _, err := ch.Write([]byte("echo PID=$$\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "PID=", 10*time.Second)
	m := regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(out.waitFor(t, "\n", time.Second))
	for m == nil {
		time.Sleep(20 * time.Millisecond)
		m = regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(out.String())
	}
	pid, _ := strconv.Atoi(m[1])

	pch, _ := openPort(t, f, "leak-port", `{"portNumber":"`+echo.port()+`","type":"LocalPortForwarding"}`, datachannel.Config{})
	mcfg := smux.DefaultConfig()
	mcfg.KeepAliveDisabled = true
	mux, err := smux.Client(clientRWC{pch}, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("shell %d survived Close", pid)
	}
	if got := a.Sessions(); len(got) != 0 {
		t.Errorf("sessions after Close: %v", got)
	}
	_ = mux.Close()
	_ = ch.Close()
	_ = pch.Close()
	// The fake, the echo server and the client channels are test-side; give
	// them a moment to wind down too, then compare.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDataChannelReconnects(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60200"
	ch, _, out := openShell(t, f, sid, shellDoc(wire.SessionInputs{}), datachannel.Config{})
	if _, err := ch.Write([]byte("echo one-$((1*1))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "one-1", 10*time.Second)
	s := f.session(sid)
	s.mu.Lock()
	agentConn := s.agent
	s.mu.Unlock()
	_ = agentConn.Close()
	if _, err := ch.Write([]byte("echo two-$((1+1))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "two-2", 15*time.Second)
	if n := f.dataCreateCount(sid); n < 2 {
		t.Errorf("CreateDataChannel called %d times, want a second call", n)
	}
}

func TestTerminatedSessionIsNotRetried(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60201"
	f.mu.Lock()
	f.terminated[sid] = true
	f.mu.Unlock()
	f.startSession(sid, shellDoc(wire.SessionInputs{}), "")
	f.waitTaskComplete(t, 10*time.Second)
	if n := f.dataCreateCount(sid); n != 1 {
		t.Errorf("CreateDataChannel called %d times for a terminated session, want 1", n)
	}
}
