package datachannel

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// TestBidirectionalTransfer is the proof: random bytes in each
// direction at once arrive complete, in order and byte-identical over every
// link, with and without encryption, and the session stays open.
func TestBidirectionalTransfer(t *testing.T) {
	// 32 MiB each way over ten links with the race detector is a minute on
	// two cores: enough messages (thousands) for every fault to happen.
	size := 32 << 20
	if testing.Short() {
		size = 1 << 20
	}
	for _, l := range []link{linkPipe, linkNetPipe, linkWebsocket, linkFaulty, linkFaultyWS} {
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/kms=%v", l, enc), func(t *testing.T) {
				size := size
				if l == linkFaultyWS {
					size /= 4 // the slowest link; the faults are the point
				}
				client, agent := newPair(t, pairOptions{link: l, kms: enc})
				start := time.Now()
				errc := make(chan error, 2)
				go func() { errc <- transfer(t, client, agent, size, 100_000) }()
				go func() { errc <- transfer(t, agent, client, size, 77_777) }()
				for i := 0; i < 2; i++ {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
				}
				el := time.Since(start)
				// Still open: one more exchange both ways.
				if err := transfer(t, client, agent, 10, 10); err != nil {
					t.Fatalf("after transfer: %v", err)
				}
				if err := transfer(t, agent, client, 10, 10); err != nil {
					t.Fatalf("after transfer: %v", err)
				}
				if client.Err() != nil || agent.Err() != nil {
					t.Fatalf("channel ended: %v / %v", client.Err(), agent.Err())
				}
				cs, as := client.Stats(), agent.Stats()
				t.Logf("%d MiB each way in %v (%.1f MB/s combined); client %+v agent %+v",
					size>>20, el.Round(time.Millisecond), float64(2*size)/el.Seconds()/1e6, cs, as)
				if l == linkFaulty || l == linkFaultyWS {
					cf, af := client.cfgConn(), agent.cfgConn()
					t.Logf("faults: client→ dropped %d dup %d reordered %d; agent→ dropped %d dup %d reordered %d",
						cf.dropped.Load(), cf.duplicated.Load(), cf.reordered.Load(),
						af.dropped.Load(), af.duplicated.Load(), af.reordered.Load())
					if cf.dropped.Load() == 0 || af.duplicated.Load() == 0 || af.reordered.Load() == 0 {
						t.Fatal("the faulty link injected no faults")
					}
				}
			})
		}
	}
}

// cfgConn returns the faulty link under a channel (tests only).
func (c *Channel) cfgConn() *faulty { return c.conn.Load().c.(*faulty) }

func TestSessionTypesAndHandshakeInfo(t *testing.T) {
	props := []byte(`{"localPortNumber":"0","portNumber":"22","type":"LocalPortForwarding"}`)
	cases := []struct {
		name      string
		st        string
		kms       bool
		handshake bool
	}{
		{"shell", ssmdoc.SessionTypeStandardStream, false, false},
		{"shell+kms", ssmdoc.SessionTypeStandardStream, true, true},
		{"interactive", ssmdoc.SessionTypeInteractiveCommands, false, false},
		{"noninteractive", ssmdoc.SessionTypeNonInteractiveCommands, false, true},
		{"port", ssmdoc.SessionTypePort, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, agent := newPair(t, pairOptions{link: linkPipe, sessionType: c.st, kms: c.kms, agent: func(cfg *Config) {
				cfg.Agent.Properties = props
			}})
			ci, ai := client.Info(), agent.Info()
			if ci.Handshake != c.handshake || ai.Handshake != c.handshake {
				t.Fatalf("handshake client=%v agent=%v want %v", ci.Handshake, ai.Handshake, c.handshake)
			}
			wantType := c.st
			if !c.handshake {
				wantType = ssmdoc.SessionTypeStandardStream
			}
			if ci.SessionType != wantType {
				t.Fatalf("client session type %q, want %q", ci.SessionType, wantType)
			}
			if c.handshake && ci.AgentVersion != DefaultAgentVersion {
				t.Fatalf("agent version %q", ci.AgentVersion)
			}
			if c.handshake && ai.ClientVersion != DefaultClientVersion {
				t.Fatalf("client version %q", ai.ClientVersion)
			}
			if c.st == ssmdoc.SessionTypePort && string(ci.Properties) != string(props) {
				t.Fatalf("properties %s", ci.Properties)
			}
			if c.kms && ci.CustomerMessage != kmsCustomerMessage {
				t.Fatalf("customer message %q", ci.CustomerMessage)
			}
			if err := transfer(t, client, agent, 5000, 1000); err != nil {
				t.Fatal(err)
			}
			if err := transfer(t, agent, client, 5000, 1000); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPortNeverEncrypted: a KMS key on a Port session is ignored (§5.1).
func TestPortNeverEncrypted(t *testing.T) {
	client, agent := newPair(t, pairOptions{link: linkPipe, sessionType: ssmdoc.SessionTypePort, agent: func(cfg *Config) {
		cfg.Agent.KMSKeyID = "alias/session"
	}})
	if client.Info().Encrypted || agent.Info().Encrypted {
		t.Fatal("port session encrypted")
	}
}
