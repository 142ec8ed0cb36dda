package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/xtaci/smux"
)

// portTypeLocal is the port-forwarding type that allows smux (§8.2).
const portTypeLocal = "LocalPortForwarding"

// portDialTimeout bounds each connection to the destination.
const portDialTimeout = 10 * time.Second

// portPlugin serves Port sessions (§8): smux server mode when the client
// supports it, otherwise basic mode with one connection at a time.
type portPlugin struct {
	s       *session
	port    string
	host    string
	typ     string
	targets []string // resolved host:port candidates, tried in order
}

func newPortPlugin(s *session) (*portPlugin, error) {
	props := platformProperties(s.doc.Properties)
	port, err := propString(props, "portNumber")
	if err != nil {
		return nil, fmt.Errorf("Port: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("Port: portNumber %q is not a port number", port)
	}
	host, err := propString(props, "host")
	if err != nil {
		return nil, fmt.Errorf("Port: %w", err)
	}
	typ, err := propString(props, "type")
	if err != nil {
		return nil, fmt.Errorf("Port: %w", err)
	}
	return &portPlugin{s: s, port: strconv.Itoa(n), host: host, typ: typ}, nil
}

// resolve works out the destination addresses, refusing the deny list
// (§8.1). Without a host the destination is localhost.
func (p *portPlugin) resolve(ctx context.Context) error {
	if p.host == "" {
		p.targets = []string{net.JoinHostPort("localhost", p.port)}
		return nil
	}
	var ips []net.IP
	if ip := net.ParseIP(p.host); ip != nil {
		ips = []net.IP{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, portDialTimeout)
		addrs, err := net.DefaultResolver.LookupIPAddr(rctx, p.host)
		cancel()
		if err != nil {
			return fmt.Errorf("resolving %s: %w", p.host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		for _, d := range p.s.a.cfg.DeniedRemoteIPs {
			if dip := net.ParseIP(d); dip != nil && dip.Equal(ip) {
				return fmt.Errorf("forwarding to %s (%s) is not allowed: the address is on the agent's deny list", p.host, ip)
			}
		}
		p.targets = append(p.targets, net.JoinHostPort(ip.String(), p.port))
	}
	if len(p.targets) == 0 {
		return fmt.Errorf("resolving %s: no addresses", p.host)
	}
	return nil
}

// dial connects to the destination, trying each address in turn.
func (p *portPlugin) dial(ctx context.Context) (net.Conn, error) {
	var lastErr error
	d := net.Dialer{Timeout: portDialTimeout}
	for _, t := range p.targets {
		c, err := d.DialContext(ctx, "tcp", t)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("connecting to the destination port: %w", lastErr)
}

func (p *portPlugin) serve(ch *datachannel.Channel, info datachannel.SessionInfo) (string, string) {
	s := p.s
	if err := p.resolve(s.ctx); err != nil {
		s.logf("%v", err)
		return taskFailed, err.Error()
	}
	if p.typ == portTypeLocal && version.AgentUsesMux(info.ClientVersion) {
		return p.serveMux(ch, info.ClientVersion)
	}
	return p.serveBasic(ch)
}

// portFlagHandler handles the flags common to both modes; DisconnectToPort
// goes to onDisconnect (basic mode only, §8.5).
func (p *portPlugin) portFlagHandler(onDisconnect func() error) datachannel.ControlHandler {
	return func(pkt datachannel.Packet) error {
		if pkt.Type != wire.PayloadFlag {
			return nil // Size means nothing to a port session
		}
		f, err := wire.DecodeFlag(pkt.Data)
		if err != nil {
			return nil
		}
		switch f {
		case wire.FlagTerminateSession:
			p.s.logf("client sent TerminateSession")
			p.s.cancel(errTerminatedByClient)
		case wire.FlagDisconnectToPort:
			if onDisconnect != nil {
				return onDisconnect()
			}
		}
		return nil
	}
}

// channelRWC presents the data channel's Output byte stream to smux.
type channelRWC struct{ ch *datachannel.Channel }

func (c channelRWC) Read(b []byte) (int, error)  { return c.ch.Read(b) }
func (c channelRWC) Write(b []byte) (int, error) { return c.ch.Write(b) }

// Close is a no-op: the session closes the data channel itself, after
// smux has stopped.
func (c channelRWC) Close() error { return nil }

// serveMux runs the smux server (§8.4): every stream the client opens
// becomes one connection to the destination.
func (p *portPlugin) serveMux(ch *datachannel.Channel, clientVersion string) (string, string) {
	s := p.s
	cfg := smux.DefaultConfig()
	cfg.Version = 1
	cfg.KeepAliveDisabled = version.AgentMuxKeepAliveOff(clientVersion)
	mux, err := smux.Server(channelRWC{ch}, cfg)
	if err != nil {
		return taskFailed, fmt.Sprintf("starting smux: %v", err)
	}
	pctx, stop := context.WithCancel(s.ctx)
	defer stop()
	s.setHandler(p.portFlagHandler(nil))
	s.logf("port forwarding (smux, keepalive %v) to %v", !cfg.KeepAliveDisabled, p.targets)

	var streams sync.WaitGroup
	s.goroutine(func() {
		for {
			st, err := mux.AcceptStream()
			if err != nil {
				return
			}
			streams.Add(1)
			go func() {
				defer streams.Done()
				p.serveStream(pctx, ch, st)
			}()
		}
	})

	var status, output string
	select {
	case <-s.ctx.Done():
		status, output = s.channelEnded(ch)
	case <-ch.Done():
		status, output = s.channelEnded(ch)
	case <-mux.CloseChan():
		status, output = taskFailed, "the smux session ended"
		if s.ctx.Err() != nil || isClosed(ch) {
			status, output = s.channelEnded(ch)
		}
	}
	stop()
	_ = mux.Close()
	streams.Wait()
	return status, output
}

func isClosed(ch *datachannel.Channel) bool {
	select {
	case <-ch.Done():
		return true
	default:
		return false
	}
}

// serveStream connects one smux stream to the destination. A failed dial
// is reported with the ConnectToPortError flag (§8.4).
func (p *portPlugin) serveStream(ctx context.Context, ch *datachannel.Channel, st *smux.Stream) {
	conn, err := p.dial(ctx)
	if err != nil {
		p.s.logf("stream %d: %v", st.ID(), err)
		_ = ch.SendFlag(wire.FlagConnectToPortError)
		_ = st.Close()
		return
	}
	stop := context.AfterFunc(ctx, func() {
		_ = conn.Close()
		_ = st.Close()
	})
	defer stop()
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		_, _ = io.Copy(conn, st)
		// The client finished sending: pass the half-close on and keep
		// returning the destination's answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(st, conn)
	// The destination is done: end the stream both ways, as upstream does.
	_ = st.Close()
	_ = conn.Close()
	<-clientDone
}

// Basic-mode DisconnectToPort states (see serveBasic).
const (
	discIdle     int32 = iota // no flag pending
	discDraining              // flag seen, held unacked while earlier data drains
	discDone                  // old connection closed; the resent flag is accepted
)

// basicPort is the state of one basic-mode session.
type basicPort struct {
	p  *portPlugin
	ch *datachannel.Channel

	mu   sync.Mutex
	conn net.Conn // current destination connection, or nil

	disc     atomic.Int32
	drainReq chan struct{}
	holding  atomic.Bool // the reader holds bytes it has not written yet
	end      chan [2]string
}

// serveBasic forwards one TCP connection at a time (§8.3, §8.6).
//
// DisconnectToPort must close the connection only after the bytes the
// client sent before it have been written to it. The data channel hands
// Output bytes to Read and flags to the handler separately, so the flag is
// held unacknowledged (no later message is delivered meanwhile) until the
// reader has drained the earlier bytes; the connection is then closed and
// the client's retransmission of the flag is accepted.
func (p *portPlugin) serveBasic(ch *datachannel.Channel) (string, string) {
	s := p.s
	b := &basicPort{p: p, ch: ch, drainReq: make(chan struct{}, 1), end: make(chan [2]string, 1)}
	conn, err := p.dial(s.ctx)
	if err != nil {
		s.logf("%v", err)
		return taskFailed, err.Error()
	}
	b.setConn(conn)
	s.setHandler(p.portFlagHandler(b.onDisconnect))
	s.logf("port forwarding (basic, type %q) to %v", p.typ, p.targets)
	s.goroutine(b.readClient)

	var status, output string
	for status == "" {
		select {
		case <-b.drainReq:
			b.drain()
		case r := <-b.end:
			status, output = r[0], r[1]
		case <-s.ctx.Done():
			status, output = s.channelEnded(ch)
		case <-ch.Done():
			status, output = s.channelEnded(ch)
		}
	}
	b.mu.Lock()
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
	b.mu.Unlock()
	return status, output
}

func (b *basicPort) finish(status, output string) {
	select {
	case b.end <- [2]string{status, output}:
	default:
	}
}

// setConn makes c the current connection and starts copying its data to
// the client. Call with b.mu held or before other goroutines start.
func (b *basicPort) setConn(c net.Conn) {
	b.conn = c
	b.p.s.goroutine(func() { b.readDestination(c) })
}

// readDestination copies one destination connection to the client.
func (b *basicPort) readDestination(c net.Conn) {
	buf := make([]byte, 32<<10)
	var rerr error
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := b.ch.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			rerr = err
			break
		}
	}
	b.mu.Lock()
	current := b.conn == c
	if current {
		b.conn = nil
	}
	b.mu.Unlock()
	_ = c.Close()
	if !current {
		return // closed on purpose (DisconnectToPort or the end)
	}
	if b.p.typ != portTypeLocal {
		// SSH-style sessions end with the destination (§8.6).
		if errors.Is(rerr, io.EOF) {
			b.finish(taskSuccess, "")
		} else {
			b.finish(taskFailed, fmt.Sprintf("reading from the destination: %v", rerr))
		}
	}
	// LocalPortForwarding: wait; the next client data redials (§8.3).
}

// readClient writes client Output to the current connection, redialling
// when there is none.
func (b *basicPort) readClient() {
	buf := make([]byte, 32<<10)
	for {
		n, err := b.ch.Read(buf)
		if n > 0 {
			b.holding.Store(true)
			if !b.write(buf[:n]) {
				b.holding.Store(false)
				return
			}
			b.holding.Store(false)
		}
		if err != nil {
			return
		}
	}
}

func (b *basicPort) write(data []byte) bool {
	b.mu.Lock()
	c := b.conn
	if c == nil {
		if b.p.typ != portTypeLocal {
			b.mu.Unlock()
			return true // the session is ending with the destination
		}
		nc, err := b.p.dial(b.p.s.ctx)
		if err != nil {
			b.mu.Unlock()
			b.finish(taskFailed, err.Error())
			return false
		}
		b.setConn(nc)
		c = nc
	}
	b.mu.Unlock()
	_, _ = c.Write(data) // a failed write shows up as a read error
	return true
}

// onDisconnect is the DisconnectToPort handler; it runs on the channel's
// receive goroutine and must not block.
func (b *basicPort) onDisconnect() error {
	switch b.disc.Load() {
	case discIdle:
		b.disc.Store(discDraining)
		select {
		case b.drainReq <- struct{}{}:
		default:
		}
		return datachannel.ErrNotReady
	case discDraining:
		return datachannel.ErrNotReady
	default:
		b.disc.Store(discIdle)
		return nil
	}
}

// drainSettle covers the instant between the reader's Read returning and
// it marking itself as holding bytes.
const drainSettle = 10 * time.Millisecond

// drain waits until the bytes sent before DisconnectToPort have been
// written, then closes the connection.
func (b *basicPort) drain() {
	ctx := b.p.s.ctx
	for {
		if b.ch.Stats().Buffered == 0 && !b.holding.Load() {
			select {
			case <-time.After(drainSettle):
			case <-ctx.Done():
				return
			}
			if b.ch.Stats().Buffered == 0 && !b.holding.Load() {
				break
			}
			continue
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	b.mu.Lock()
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
	b.mu.Unlock()
	b.p.s.logf("client disconnected from the port; waiting for the next connection")
	b.disc.Store(discDone)
}
