package datachannel

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// link names a way to connect the two ends.
type link string

const (
	linkPipe      link = "pipe"      // in-memory message pipe
	linkNetPipe   link = "netpipe"   // length-framed net.Pipe
	linkWebsocket link = "websocket" // real loopback websocket
	linkFaulty    link = "faulty"    // pipe with drops, duplicates and reordering
	// websocket with drops, duplicates and reordering: retransmitted
	// frames from the pool race with their acknowledgements, and received
	// buffers are recycled
	linkFaultyWS link = "faultyws"
)

func connect(t testing.TB, l link) (client, agent MessageConn) {
	t.Helper()
	switch l {
	case linkPipe:
		a, b := transporttest.Pipe()
		return a, b
	case linkNetPipe:
		a, b := net.Pipe()
		return transporttest.NewFramed(a), transporttest.NewFramed(b)
	case linkWebsocket:
		c, s := transporttest.WebsocketPair(t)
		return c, s
	case linkFaulty:
		a, b := transporttest.Pipe()
		return newFaulty(a, 1, 0.05, 0.05, 0.05), newFaulty(b, 2, 0.05, 0.05, 0.05)
	case linkFaultyWS:
		c, s := transporttest.WebsocketPair(t)
		return newFaulty(c, 3, 0.05, 0.05, 0.05), newFaulty(s, 4, 0.05, 0.05, 0.05)
	}
	t.Fatalf("unknown link %s", l)
	return nil, nil
}

// faulty drops, duplicates and reorders the messages written to it.
type faulty struct {
	MessageConn
	mu                  sync.Mutex
	rng                 *mrand.Rand
	drop, dup, reorder  float64
	held                []byte
	dropped, duplicated atomic.Int64
	reordered           atomic.Int64
}

func newFaulty(c MessageConn, seed uint64, drop, dup, reorder float64) *faulty {
	return &faulty{MessageConn: c, rng: mrand.New(mrand.NewPCG(seed, seed*7919)), drop: drop, dup: dup, reorder: reorder}
}

// Recycle passes received buffers back to the link underneath.
func (f *faulty) Recycle(b []byte) {
	if r, ok := f.MessageConn.(recycler); ok {
		r.Recycle(b)
	}
}

func (f *faulty) WriteMessage(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rng.Float64()
	var out [][]byte
	switch {
	case r < f.drop:
		f.dropped.Add(1)
	case r < f.drop+f.dup:
		f.duplicated.Add(1)
		out = append(out, b, b)
	case r < f.drop+f.dup+f.reorder && f.held == nil:
		// Hold this one back until the next message has gone out.
		f.reordered.Add(1)
		f.held = append([]byte(nil), b...)
		return nil
	default:
		out = append(out, b)
	}
	if f.held != nil && len(out) > 0 {
		out = append(out, f.held)
		f.held = nil
	}
	for _, m := range out {
		if err := f.MessageConn.WriteMessage(m); err != nil {
			return err
		}
	}
	return nil
}

type pairOptions struct {
	link        link
	sessionType string
	kms         bool
	client      func(*Config)
	agent       func(*Config)
}

// newPair starts both ends and completes the handshake. The agent writes
// a banner first when the session has no handshake, as a shell would.
func newPair(t testing.TB, o pairOptions) (client, agent *Channel) {
	t.Helper()
	if o.sessionType == "" {
		o.sessionType = ssmdoc.SessionTypeStandardStream
	}
	cc, ac := connect(t, o.link)
	kms := testutil.NewFakeKMS()
	ccfg := Config{Role: RoleClient, SessionID: "alice-0123456789abcdef0", TargetID: "i-0123456789abcdef0", KeyService: kms}
	acfg := Config{Role: RoleAgent, SessionID: "alice-0123456789abcdef0", TargetID: "i-0123456789abcdef0", KeyService: kms,
		Agent: AgentSession{SessionType: o.sessionType}}
	if o.kms {
		acfg.Agent.KMSKeyID = "alias/session"
	}
	if o.link == linkFaulty || o.link == linkFaultyWS {
		// Fast recovery keeps the test short; the logic is the same.
		ccfg.ResendInterval, acfg.ResendInterval = 5*time.Millisecond, 5*time.Millisecond
	}
	if o.client != nil {
		o.client(&ccfg)
	}
	if o.agent != nil {
		o.agent(&acfg)
	}
	var err error
	client, err = New(cc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	agent, err = New(ac, acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); agent.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := agent.Handshake(ctx)
		if err == nil && !agent.cfg.Agent.handshakeRequired() {
			_, err = agent.Write([]byte("banner$ "))
		}
		errc <- err
	}()
	info, err := client.Handshake(ctx)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("agent handshake: %v", err)
	}
	if info.Encrypted != o.kms {
		t.Fatalf("encrypted = %v, want %v", info.Encrypted, o.kms)
	}
	if !agent.cfg.Agent.handshakeRequired() {
		buf := make([]byte, 8)
		if _, err := readFull(client, buf); err != nil || string(buf) != "banner$ " {
			t.Fatalf("banner: %q %v", buf, err)
		}
	}
	return client, agent
}

func readFull(r interface{ Read([]byte) (int, error) }, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := r.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// transfer sends size random bytes from w to r and checks they arrive
// complete and in order.
func transfer(t testing.TB, w, r *Channel, size int, chunk int) error {
	src := make([]byte, size)
	_, _ = rand.Read(src)
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < size; off += chunk {
			end := min(off+chunk, size)
			if _, err := w.Write(src[off:end]); err != nil {
				errc <- fmt.Errorf("write at %d: %w", off, err)
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, size)
	if n, err := readFull(r, got); err != nil {
		return fmt.Errorf("read %d of %d bytes: %w", n, size, err)
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, src) {
		i := 0
		for i < size && got[i] == src[i] {
			i++
		}
		return fmt.Errorf("data differs at byte %d of %d", i, size)
	}
	return nil
}
