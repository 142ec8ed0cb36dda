package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// echoThrough sends a line through a forward and checks it comes back.
func echoThrough(t *testing.T, network, addr, msg string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dialing %s %s: %v", network, addr, err)
	}
	defer c.Close()
	fmt.Fprint(c, msg+"\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo through %s = %q, %v", addr, line, err)
	}
}

// readyLines waits for n JSON lines on stdout.
func readyLines(t *testing.T, stdout, stderr *testutil.SyncBuffer, n int) []ready {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rs []ready
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var r ready
			if json.Unmarshal([]byte(l), &r) == nil {
				rs = append(rs, r)
			}
		}
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d JSON lines of %d; stdout %q stderr %q", len(rs), n, stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForwardSeveralSpecsAndUnixSocket(t *testing.T) {
	echoA, echoB := sessiontest.EchoServer(t), sessiontest.EchoServer(t)
	portOf := func(addr string) int { _, p, _ := net.SplitHostPort(addr); n, _ := strconv.Atoi(p); return n }
	sock := filepath.Join(t.TempDir(), "a.sock")
	svc := sessiontest.New(t)
	ios, _, _, _ := iostreams.Test()
	var stdout, stderr testutil.SyncBuffer
	ios.Out, ios.ErrOut = &stdout, &stderr
	opts := &ForwardOptions{
		IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, JSON: true,
		Specs: []Spec{
			{RemotePort: portOf(echoA)},                    // A over TCP
			{Socket: sock, RemotePort: portOf(echoA)},      // A again, over a Unix socket: same session
			{Host: "127.0.0.1", RemotePort: portOf(echoB)}, // B, ssh -L style
		},
		Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- forwardRun(ctx, opts) }()
	rs := readyLines(t, &stdout, &stderr, 3)
	for i, r := range rs {
		network := "tcp"
		if strings.HasPrefix(r.LocalAddress, "/") {
			network = "unix"
		}
		echoThrough(t, network, r.LocalAddress, fmt.Sprintf("hello-%d", i))
	}
	starts := svc.Starts()
	if len(starts) != 2 {
		t.Fatalf("%d sessions, want one per destination (2)", len(starts))
	}
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.SessionID] = true
	}
	if len(ids) != 2 {
		t.Errorf("JSON lines %+v", rs)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("forward did not stop")
	}
	for id := range ids {
		// The agent ends on the TerminateSession flag, shortly after.
		deadline := time.Now().Add(10 * time.Second)
		for !svc.Ended(id) {
			if time.Now().After(deadline) {
				t.Fatalf("session %s still runs", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("the Unix socket still accepts")
	}
}

func TestForwardBindFamilies(t *testing.T) {
	v6 := true
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		v6 = false
		t.Logf("no IPv6 loopback here (%v): checking the IPv4 half only", err)
	} else {
		ln.Close()
	}
	accepts := func(network, addr string) bool {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	for _, tt := range []struct {
		bind     string
		v4, v6ok bool
	}{
		{bind: "0.0.0.0", v4: true, v6ok: false},
		{bind: "::", v4: false, v6ok: true},
		{bind: "localhost", v4: true, v6ok: true},
		{bind: "", v4: true, v6ok: false},
	} {
		lns, err := Spec{Bind: tt.bind}.listen()
		if err != nil {
			if tt.bind == "::" && !v6 {
				continue
			}
			t.Fatalf("%q: %v", tt.bind, err)
		}
		var port int
		for _, ln := range lns {
			port = ln.Addr().(*net.TCPAddr).Port
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
		p := strconv.Itoa(port)
		if got := accepts("tcp4", "127.0.0.1:"+p); got != tt.v4 {
			t.Errorf("%q: IPv4 loopback accepts = %v, want %v", tt.bind, got, tt.v4)
		}
		if v6 {
			if got := accepts("tcp6", "[::1]:"+p); got != tt.v6ok {
				t.Errorf("%q: IPv6 loopback accepts = %v, want %v", tt.bind, got, tt.v6ok)
			}
		}
	}
}
