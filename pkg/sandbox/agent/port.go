package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/portmux"
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
		return nil, fmt.Errorf("port session: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("port session: portNumber %q is not a port number", port)
	}
	host, err := propString(props, "host")
	if err != nil {
		return nil, fmt.Errorf("port session: %w", err)
	}
	typ, err := propString(props, "type")
	if err != nil {
		return nil, fmt.Errorf("port session: %w", err)
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
	// An emulated old agent must also behave like one: TCP multiplexing
	// exists only in agents the client would pick mux for (§8.2, §8.7), so
	// both ends agree on the mode.
	if p.typ == portTypeLocal && version.AgentUsesMux(info.ClientVersion) && version.ClientUsesMux(s.a.cfg.AgentVersion) {
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

// serveMux runs the smux server (§8.4): every stream the client opens
// becomes one connection to the destination.
func (p *portPlugin) serveMux(ch *datachannel.Channel, clientVersion string) (string, string) {
	s := p.s
	// Keepalive is off only when both ends turn it off (§8.4): an agent
	// older than the client's gate keeps it on, as the client expects.
	keepAliveOff := version.AgentMuxKeepAliveOff(clientVersion) && version.ClientMuxKeepAliveOff(p.s.a.cfg.AgentVersion)
	cfg := portmux.Config(ch, keepAliveOff)
	mux, err := smux.Server(portmux.Stream{Ch: ch}, cfg)
	if err != nil {
		return taskFailed, fmt.Sprintf("starting smux: %v", err)
	}
	pctx, stop := context.WithCancel(s.ctx)
	defer stop()
	s.ledger.disable()
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
		_, _ = portmux.CopyOut(conn, st)
		// The client finished sending: pass the half-close on and keep
		// returning the destination's answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = portmux.Copy(st, conn, portmux.FrameSize(ch))
	// The destination is done sending: pass its half-close on (FIN) and
	// keep delivering what the client still sends until the client closes
	// its side. Closing the destination here would drop what the stream
	// has accepted but not yet copied (issue 13, the TestSSHRun race).
	_ = st.CloseWrite()
	<-clientDone
	_ = st.Close()
	_ = conn.Close()
}

// basicPort is the state of one basic-mode session.
type basicPort struct {
	p      *portPlugin
	ch     *datachannel.Channel
	ledger *inputLedger

	mu      sync.Mutex
	conn    net.Conn // current destination connection, or nil
	written int64    // client bytes handled (written or discarded)
	cuts    []int64  // offsets at which DisconnectToPort closes the connection
	end     chan [2]string
}

// serveBasic forwards one TCP connection at a time (§8.3, §8.6).
//
// DisconnectToPort must close the connection after the bytes the client
// sent before it, and before the bytes it sends after it (which belong to
// the next connection). The data channel hands Output bytes to Read and
// flags to the handler separately, so the session's inputLedger works out
// each flag's position in the byte stream, and the reader cuts the
// connection exactly there.
func (p *portPlugin) serveBasic(ch *datachannel.Channel) (string, string) {
	s := p.s
	b := &basicPort{p: p, ch: ch, ledger: s.ledger, end: make(chan [2]string, 1)}
	conn, err := p.dial(s.ctx)
	if err != nil {
		s.logf("%v", err)
		return taskFailed, err.Error()
	}
	b.conn = conn
	s.goroutine(func() { b.readDestination(conn) })
	s.setHandler(p.portFlagHandler(b.onDisconnect))
	s.logf("port forwarding (basic, type %q) to %v", p.typ, p.targets)
	s.goroutine(b.readClient)

	var status, output string
	select {
	case r := <-b.end:
		status, output = r[0], r[1]
		// An SSH-style session ends with its destination: what the destination said last is
		// delivered (acknowledged by the client) before the agent reports the task complete and
		// the service closes the client's channel, as shells do.
		ctx, cancel := context.WithTimeout(s.ctx, flushTimeout)
		_ = ch.Flush(ctx)
		cancel()
	case <-s.ctx.Done():
		status, output = s.channelEnded(ch)
	case <-ch.Done():
		status, output = s.channelEnded(ch)
	}
	b.mu.Lock()
	b.closeConnLocked()
	b.mu.Unlock()
	return status, output
}

func (b *basicPort) finish(status, output string) {
	select {
	case b.end <- [2]string{status, output}:
	default:
	}
}

func (b *basicPort) closeConnLocked() {
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
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

// readClient writes client Output to the current connection, cutting it at
// each DisconnectToPort and redialling for the bytes after it.
func (b *basicPort) readClient() {
	buf := make([]byte, 32<<10)
	for {
		n, err := b.ch.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			b.mu.Lock()
			k := len(data)
			if len(b.cuts) > 0 && b.cuts[0]-b.written < int64(k) {
				k = int(b.cuts[0] - b.written)
			}
			if k <= 0 { // defensive: cutLocked keeps cuts ahead of written
				b.cutLocked()
				b.mu.Unlock()
				continue
			}
			c := b.conn
			b.mu.Unlock()
			if c == nil && b.p.typ == portTypeLocal {
				nc, derr := b.p.dial(b.p.s.ctx)
				if derr != nil {
					b.finish(taskFailed, derr.Error())
					return
				}
				b.mu.Lock()
				b.conn = nc
				b.mu.Unlock()
				b.p.s.goroutine(func() { b.readDestination(nc) })
				c = nc
			}
			if c != nil {
				_, _ = c.Write(data[:k]) // a failed write shows up as a read error
			}
			b.mu.Lock()
			b.written += int64(k)
			b.cutLocked()
			b.mu.Unlock()
			data = data[k:]
		}
		if err != nil {
			return
		}
	}
}

// cutLocked closes the connection for every DisconnectToPort whose
// position the reader has reached.
func (b *basicPort) cutLocked() {
	for len(b.cuts) > 0 && b.cuts[0] <= b.written {
		b.cuts = b.cuts[1:]
		b.closeConnLocked()
		b.p.s.logf("client disconnected from the port; waiting for the next connection")
	}
}

// onDisconnect is the DisconnectToPort handler. It runs on the channel's
// receive goroutine, after every byte sent before the flag has been handed
// to Read and before any byte sent after it.
func (b *basicPort) onDisconnect() error {
	at, ok := b.ledger.nextCut()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ok {
		at = b.written // cannot happen; close at once rather than never
	}
	b.cuts = append(b.cuts, at)
	b.cutLocked()
	return nil
}

// inputLedger follows a Port session's input_stream_data frames as they
// arrive, in sequence order, to find where each DisconnectToPort flag falls
// in the client's Output byte stream. Port sessions are never encrypted, so
// payload lengths are the byte counts Read delivers.
type inputLedger struct {
	mu    sync.Mutex
	off   bool
	next  int64                 // first sequence number not yet seen in order
	bytes int64                 // Output bytes in the messages before next
	ahead map[int64]ledgerEntry // messages that arrived early
	cuts  []int64               // flag offsets not yet taken by nextCut
}

type ledgerEntry struct {
	output     int
	disconnect bool
}

// maxLedgerAhead bounds the early arrivals kept (the agent's reorder buffer).
const maxLedgerAhead = 100000

func newInputLedger() *inputLedger { return &inputLedger{ahead: make(map[int64]ledgerEntry)} }

// disable stops the ledger (smux mode ignores DisconnectToPort).
func (l *inputLedger) disable() {
	l.mu.Lock()
	l.off, l.ahead, l.cuts = true, nil, nil
	l.mu.Unlock()
}

// observe takes one frame the data channel is about to process.
func (l *inputLedger) observe(frame []byte) {
	l.mu.Lock()
	off := l.off
	l.mu.Unlock()
	if off {
		return
	}
	m, err := wire.DecodeUnverified(frame) // the agent checks no digest (§2.3)
	if err != nil || m.MessageType != wire.TypeInputStreamData {
		return
	}
	var e ledgerEntry
	switch m.PayloadType {
	case wire.PayloadOutput:
		e.output = len(m.Payload)
	case wire.PayloadFlag:
		f, err := wire.DecodeFlag(m.Payload)
		e.disconnect = err == nil && f == wire.FlagDisconnectToPort
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch seq := m.SequenceNumber; {
	case l.off || seq < l.next:
		return // a duplicate
	case seq > l.next:
		if len(l.ahead) < maxLedgerAhead {
			l.ahead[seq] = e
		}
		return
	}
	l.apply(e)
	for {
		e, ok := l.ahead[l.next]
		if !ok {
			return
		}
		delete(l.ahead, l.next)
		l.apply(e)
	}
}

func (l *inputLedger) apply(e ledgerEntry) {
	if e.disconnect {
		l.cuts = append(l.cuts, l.bytes)
	}
	l.bytes += int64(e.output)
	l.next++
}

// nextCut returns the offset of the next DisconnectToPort flag.
func (l *inputLedger) nextCut() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cuts) == 0 {
		return 0, false
	}
	at := l.cuts[0]
	l.cuts = l.cuts[1:]
	return at, true
}
