package datachannel

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// limitService stands in for a service with a message size limit. It
// relays the client's frames to the agent while they fit, and closes the
// client's connection with 1009 at the first one that does not: that
// frame, everything the client writes after it on that connection, and
// the agent's frames still on their way to the client are lost, as with a
// real service. The client reconnects to a fresh connection.
type limitService struct {
	limit int
	agent *transporttest.PipeConn // the service's end of the agent's pipe

	mu      sync.Mutex
	cur     *limitConn
	refused atomic.Int32
}

type limitConn struct {
	svc       *limitService
	in        chan []byte
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitService(limit int, agent *transporttest.PipeConn) *limitService {
	s := &limitService{limit: limit, agent: agent}
	go func() {
		for {
			b, err := agent.ReadMessage()
			if err != nil {
				return
			}
			s.mu.Lock()
			cur := s.cur
			s.mu.Unlock()
			if cur == nil {
				continue
			}
			select {
			case cur.in <- b:
			case <-cur.done:
			}
		}
	}()
	return s
}

// connect opens the client's next connection.
func (s *limitService) connect() *limitConn {
	c := &limitConn{svc: s, in: make(chan []byte, 1<<14), done: make(chan struct{})}
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	return c
}

func (c *limitConn) WriteMessage(b []byte) error {
	select {
	case <-c.done:
		return transport.ErrClosed
	default:
	}
	if len(b) > c.svc.limit {
		c.svc.refused.Add(1)
		c.Close()
		return nil // the write itself went out; the service hangs up
	}
	return c.svc.agent.WriteMessage(b)
}

func (c *limitConn) ReadMessage() ([]byte, error) {
	select {
	case <-c.done:
		return nil, &transport.CloseError{Code: 1009}
	default:
	}
	select {
	case b := <-c.in:
		return b, nil
	case <-c.done:
		return nil, &transport.CloseError{Code: 1009}
	}
}

func (c *limitConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

// fallbackPair is a plain or KMS shell session whose client goes through a
// limitService.
func fallbackPair(t *testing.T, limit int, kms bool) (client, agent *Channel, svc *limitService) {
	t.Helper()
	agentSide, svcSide := transporttest.Pipe()
	svc = newLimitService(limit, svcSide)
	keys := testutil.NewFakeKMS()
	tune := func(cfg *Config) {
		cfg.ResendInterval = 5 * time.Millisecond
		cfg.InitialRTO = 50 * time.Millisecond
	}
	ccfg := Config{Role: RoleClient, SessionID: "s", TargetID: "i", KeyService: keys,
		Reconnect: func(ctx context.Context) (MessageConn, error) { return svc.connect(), nil }}
	acfg := Config{Role: RoleAgent, SessionID: "s", TargetID: "i", KeyService: keys,
		Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}}
	if kms {
		acfg.Agent.KMSKeyID = "alias/session"
	}
	tune(&ccfg)
	tune(&acfg)
	var err error
	if client, err = New(svc.connect(), ccfg); err != nil {
		t.Fatal(err)
	}
	if agent, err = New(agentSide, acfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); agent.Close(); svcSide.Close() })
	errc := make(chan error, 1)
	go func() {
		_, err := agent.Handshake(context.Background())
		if err == nil && !kms {
			_, err = agent.Write([]byte("$ ")) // a plain shell's first output
		}
		errc <- err
	}()
	if _, err := client.Handshake(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !kms {
		buf := make([]byte, 2)
		if _, err := readFull(client, buf); err != nil {
			t.Fatal(err)
		}
	}
	return client, agent, svc
}

// TestFallbackAfterMessageTooBig: a service that closes the connection
// with 1009 at messages over its limit gets every byte once and in order,
// in messages that fit, whether the refused messages are plain or
// encrypted, all of one size or mixed with smaller ones it takes (whose
// acknowledgements it loses with the connection).
func TestFallbackAfterMessageTooBig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		limit  int
		kms    bool
		writes []int // sizes of the client's writes, repeated
	}{
		{"plain", 8 << 10, false, []int{32 << 10}},
		{"kms", 8 << 10, true, []int{32 << 10}},
		{"mixed sizes", 20 << 10, false, []int{10 << 10, 32 << 10, 3000, 16 << 10}},
		{"just over", 2 << 10, false, []int{1500, 5000, 700}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, agent, svc := fallbackPair(t, tt.limit, tt.kms)
				r := rand.New(rand.NewPCG(7, 9))
				var sent bytes.Buffer
				for i := 0; sent.Len() < 600<<10; i++ {
					b := make([]byte, tt.writes[i%len(tt.writes)])
					for j := range b {
						b[j] = byte(r.Uint32())
					}
					sent.Write(b)
				}
				want := sent.Bytes()
				errc := make(chan error, 1)
				go func() {
					for off, i := 0, 0; off < len(want); i++ {
						n := min(tt.writes[i%len(tt.writes)], len(want)-off)
						if _, err := client.Write(want[off : off+n]); err != nil {
							errc <- err
							return
						}
						off += n
					}
					errc <- nil
				}()
				got := make([]byte, len(want))
				if _, err := readFull(agent, got); err != nil {
					t.Fatalf("agent read: %v", err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("client write: %v", err)
				}
				if !bytes.Equal(got, want) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Fatalf("the agent's bytes differ from the client's at %d of %d", i, len(want))
				}
				if err := client.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				st := client.Stats()
				if !st.Fallback || st.Split == 0 || svc.refused.Load() < 2 {
					t.Fatalf("no fallback: %+v, %d refusals", st, svc.refused.Load())
				}
				if client.MaxPayload() != FallbackPayloadSize {
					t.Fatalf("max payload %d after the fallback", client.MaxPayload())
				}
				// Still working afterwards, both ways.
				if err := transfer(t, client, agent, 100<<10, 32<<10); err != nil {
					t.Fatal(err)
				}
				if err := transfer(t, agent, client, 100<<10, 32<<10); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s; refused %d times", st, svc.refused.Load())
			})
		})
	}
}

// TestTooBigWithoutReconnect: without reconnection, a refusal ends
// the channel as a lost connection, naming the 1009 close.
func TestTooBigWithoutReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agentSide, svcSide := transporttest.Pipe()
		svc := newLimitService(4<<10, svcSide)
		client, err := New(svc.connect(), Config{Role: RoleClient, SessionID: "s", TargetID: "i"})
		if err != nil {
			t.Fatal(err)
		}
		agent, _ := New(agentSide, Config{Role: RoleAgent, SessionID: "s", TargetID: "i", Agent: AgentSession{SessionType: ssmdoc.SessionTypeStandardStream}})
		defer agent.Close()
		defer client.Close()
		go func() { agent.Handshake(context.Background()); agent.Write([]byte("$ ")) }()
		if _, err := client.Handshake(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, _ = client.Write(make([]byte, 10<<10))
		<-client.Done()
		var ce *transport.CloseError
		if !errors.Is(client.Err(), ErrConnectionLost) || !errors.As(client.Err(), &ce) || ce.Code != 1009 {
			t.Fatalf("err = %v, want ErrConnectionLost wrapping the 1009 close", client.Err())
		}
	})
}
