package session

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/xtaci/smux"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/portmux"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// ForwardOptions configure Forward.
type ForwardOptions struct {
	// Listener accepts the local connections. When nil, Forward listens on
	// LocalAddr and closes that listener when it returns.
	Listener net.Listener
	// LocalAddr is the TCP address to listen on (default "127.0.0.1:0",
	// any free loopback port).
	LocalAddr string
	// OnReady is called once with the listening address, before the first
	// connection is accepted.
	OnReady func(addr net.Addr)
	// OnAccept, when set, is called with each accepted local connection
	// before it is forwarded.
	OnAccept func(conn net.Conn)
	// Stderr receives warnings such as a failed destination connection.
	Stderr io.Writer
}

// DefaultLocalAddr is where Forward listens unless told otherwise.
const DefaultLocalAddr = "127.0.0.1:0"

// Port forwarding modes (§8.2).
const (
	portTypeLocal = "LocalPortForwarding"
	// flushWait bounds the wait for the TerminateSession flag to be acked.
	flushWait = 2 * time.Second
)

// portProperties are the client-side keys of a Port session (§8.1).
type portProperties struct {
	PortNumber      string `json:"portNumber"`
	LocalPortNumber string `json:"localPortNumber"`
	Type            string `json:"type"`
}

// Forward forwards local TCP connections through a LocalPortForwarding
// session until ctx ends or the session ends (§8).
//
// Against agents above 3.0.196.0 it multiplexes any number of concurrent
// connections over one smux session (§8.4); older agents get basic mode,
// one connection at a time with DisconnectToPort between them (§8.3).
// When ctx ends, it ends the session (TerminateSession flag, or the API for
// basic mode against agents up to 2.3.722.0) and returns nil.
func Forward(ctx context.Context, s *Session, opts ForwardOptions) error {
	info := s.info
	if info.SessionType != ssmdoc.SessionTypePort {
		return fmt.Errorf("session %s has type %q: %w", s.id, info.SessionType, ErrNotPortSession)
	}
	var props portProperties
	if len(info.Properties) > 0 {
		if err := json.Unmarshal(info.Properties, &props); err != nil {
			return fmt.Errorf("session %s: reading port properties: %w", s.id, err)
		}
	}
	if props.Type != portTypeLocal {
		return fmt.Errorf("session %s is a standard-stream port session (type %q), use it as a stream: %w", s.id, props.Type, ErrNotPortSession)
	}
	ln := opts.Listener
	if ln == nil {
		addr := opts.LocalAddr
		if addr == "" {
			addr = DefaultLocalAddr
		}
		var err error
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	defer ln.Close()
	stderr := gate(opts.Stderr)
	defer stderr.close()
	f := &forwarder{s: s, ln: ln, stderr: stderr, onAccept: opts.OnAccept}
	s.setHandler(f.onControl)
	if opts.OnReady != nil {
		opts.OnReady(ln.Addr())
	}
	if version.ClientUsesMux(info.AgentVersion) {
		return f.runMux(ctx, version.ClientMuxKeepAliveOff(info.AgentVersion))
	}
	return f.runBasic(ctx, version.ClientSendsTerminateFlag(info.AgentVersion))
}

type forwarder struct {
	s        *Session
	ln       net.Listener
	stderr   io.Writer
	onAccept func(net.Conn)

	mu  sync.Mutex // basic mode: the one local connection
	cur net.Conn
}

func (f *forwarder) accepted(conn net.Conn) {
	if f.onAccept != nil {
		f.onAccept(conn)
	}
}

func (f *forwarder) onControl(p datachannel.Packet) error {
	if p.Type != wire.PayloadFlag {
		return nil
	}
	flag, err := wire.DecodeFlag(p.Data)
	if err != nil {
		f.s.logf("ignoring flag: %v", err)
		return nil
	}
	if flag == wire.FlagConnectToPortError {
		fmt.Fprintln(f.stderr, "connection to destination port failed: check that something listens on the remote port, and the SSM Agent logs")
	}
	return nil
}

func (f *forwarder) runMux(ctx context.Context, keepAliveOff bool) error {
	mux, err := smux.Client(portmux.Stream{Ch: f.s.ch}, portmux.Config(f.s.ch, keepAliveOff))
	if err != nil {
		return fmt.Errorf("session %s: starting the multiplexer: %w", f.s.id, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after mux.Close has ended every stream
	defer mux.Close()
	acceptErr := make(chan error, 1)
	go func() {
		for {
			conn, err := f.ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			f.accepted(conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.proxyMux(mux, conn)
			}()
		}
	}()
	select {
	case <-ctx.Done():
		f.ln.Close()
		f.terminateWithFlag(ctx)
		return nil
	case <-f.s.Done():
		f.ln.Close()
		return f.endErr()
	case <-mux.CloseChan():
		f.ln.Close()
		if err := f.endErr(); err != nil {
			return err
		}
		return fmt.Errorf("session %s: the multiplexer closed", f.s.id)
	case err := <-acceptErr:
		return fmt.Errorf("accepting local connections: %w", err)
	}
}

// proxyMux copies between one local connection and a new smux stream.
func (f *forwarder) proxyMux(mux *smux.Session, conn net.Conn) {
	defer conn.Close()
	stream, err := mux.OpenStream()
	if err != nil {
		f.s.logf("opening a stream for %s: %v", conn.RemoteAddr(), err)
		return
	}
	defer stream.Close()
	up := make(chan struct{})
	go func() {
		defer close(up)
		_, _ = portmux.Copy(stream, conn, portmux.FrameSize(f.s.ch))
		// The local side finished sending: half-close so the reply can
		// still arrive.
		_ = stream.CloseWrite()
	}()
	// smux hands over one frame per Read, so a copy buffer would hold one
	// frame at a time and copy every byte once more: CopyOut writes each
	// received frame to conn straight from smux's buffer (issue 12).
	_, _ = portmux.CopyOut(conn, stream)
	// The remote side is done: nothing more can be delivered.
	_ = conn.Close()
	_ = stream.Close()
	<-up
}

func (f *forwarder) runBasic(ctx context.Context, terminateFlag bool) error {
	// Agent → local: whatever arrives goes to the current connection, and
	// is dropped while there is none (§8.3).
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := f.s.ch.Read(buf)
			if n > 0 {
				f.mu.Lock()
				c := f.cur
				f.mu.Unlock()
				if c != nil {
					_, _ = c.Write(buf[:n])
				}
			}
			if err != nil {
				return
			}
		}
	}()
	acceptErr := make(chan error, 1)
	go func() {
		for {
			conn, err := f.ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			f.accepted(conn)
			f.serveBasic(conn)
		}
	}()
	select {
	case <-ctx.Done():
		f.ln.Close()
		f.closeCurrent()
		if terminateFlag {
			f.terminateWithFlag(ctx)
			return nil
		}
		// Old agents ignore the flag: end through the API and wait for
		// the service to close the channel (§8.5).
		f.s.terminateQuietly(ctx)
		select {
		case <-f.s.Done():
		case <-time.After(5 * time.Second):
		}
		return nil
	case <-f.s.Done():
		f.ln.Close()
		f.closeCurrent()
		return f.endErr()
	case err := <-acceptErr:
		f.closeCurrent()
		return fmt.Errorf("accepting local connections: %w", err)
	}
}

// serveBasic sends one local connection's bytes until it closes, then
// tells the agent with DisconnectToPort (§8.3).
func (f *forwarder) serveBasic(conn net.Conn) {
	f.mu.Lock()
	f.cur = conn
	f.mu.Unlock()
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := f.s.ch.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	f.closeCurrent()
	if err := f.s.ch.SendFlag(wire.FlagDisconnectToPort); err != nil {
		f.s.logf("sending DisconnectToPort: %v", err)
	}
}

func (f *forwarder) closeCurrent() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		_ = f.cur.Close()
		f.cur = nil
	}
}

// terminateWithFlag ends the session with the TerminateSession flag and
// gives the agent a moment to acknowledge it (§8.5).
func (f *forwarder) terminateWithFlag(ctx context.Context) {
	if err := f.s.ch.SendFlag(wire.FlagTerminateSession); err != nil {
		f.s.logf("sending TerminateSession: %v", err)
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushWait)
	defer cancel()
	_ = f.s.ch.Flush(fctx)
}

// endErr reports a session end: nil for a normal close, printing the
// service's reason.
func (f *forwarder) endErr() error {
	msg, err := f.s.ended(false)
	if msg != "" {
		fmt.Fprintln(f.stderr, msg)
	}
	return err
}
