package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// TestForwardFallsBackWhenTheServiceRefusesLargeMessages runs a port
// forward through a sandbox whose ssmmessages closes any data channel that
// sends a websocket message over 4 KiB with status 1009 (message too big),
// as a service with a smaller limit than ssmkit's 32 KiB messages would.
// Client and agent both fall back to 1 KiB messages, reconnect, and every
// byte of a transfer each way arrives once and in order.
func TestForwardFallsBackWhenTheServiceRefusesLargeMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "small-frames"}}, MaxMessageSize: 4 << 10})
	inst := sb.Instances()[0]
	echo := sessiontest.EchoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	remote, _ := strconv.Atoi(port)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := session.OpenTarget(ctx, session.NewClients(sb.AWSConfig()), session.PortForwardRequest(inst.ID, remote, 0, ""), session.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	fctx, stop := context.WithCancel(ctx)
	go func() {
		done <- session.Forward(fctx, s, session.ForwardOptions{OnReady: func(a net.Addr) { ready <- a.String() }})
	}()
	c, err := net.Dial("tcp", <-ready)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 2<<20)
	_, _ = rand.Read(data)
	werr := make(chan error, 1)
	go func() { _, err := c.Write(data); werr <- err }()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the echoed bytes differ from those sent")
	}
	st := s.Stats()
	if !st.Fallback || s.MaxPayload() != datachannel.FallbackPayloadSize {
		t.Fatalf("the client did not fall back: %v", st)
	}
	t.Logf("client: %v", st)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Forward: %v", err)
	}
}

// TestBadMaxPayloadEnvStartsNothing: a malformed SSMKIT_MAX_PAYLOAD is a
// clear error before any session exists; a good one sets the size.
func TestBadMaxPayloadEnvStartsNothing(t *testing.T) {
	svc := sessiontest.New(t)
	t.Setenv(session.EnvMaxPayload, "lots")
	_, err := session.Open(context.Background(), svc, session.StartRequest{Target: "i-0123456789abcdef0"}, session.Options{})
	if err == nil || !strings.Contains(err.Error(), "SSMKIT_MAX_PAYLOAD") {
		t.Fatalf("err = %v", err)
	}
	if n := len(svc.Starts()); n != 0 {
		t.Fatalf("%d sessions started", n)
	}
	t.Setenv(session.EnvMaxPayload, "4096")
	s, err := session.Open(context.Background(), svc, session.StartRequest{Target: "i-0123456789abcdef0"}, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MaxPayload() != 4096 {
		t.Fatalf("max payload %d, want 4096", s.MaxPayload())
	}
}
