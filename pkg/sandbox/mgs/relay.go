package mgs

import (
	"net/http"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// outFrame is one queued frame; last closes the socket after it is written.
type outFrame struct {
	b    []byte
	last bool
}

// peer is one end's data-channel socket. Frames to it go through a bounded
// queue drained by its own writer goroutine, so the reader of the other end
// never waits on this end's network for long.
type peer struct {
	conn       *transport.Conn
	out        chan outFrame
	done       chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
}

// newPeer wraps conn and starts its writer.
func newPeer(conn *transport.Conn) *peer {
	p := &peer{
		conn:       conn,
		out:        make(chan outFrame, sendQueueLen),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	go p.writer()
	return p
}

// maxWriteBatch bounds how many queued frames the writer sends with one
// system call.
const maxWriteBatch = 64

// maxHeldFrames bounds the agent frames held for a client that is not
// attached; it must stay below sendQueueLen.
const maxHeldFrames = 128

// writer writes queued frames until the peer closes: everything waiting at
// once, in one system call, and the buffers go back to the pool.
func (p *peer) writer() {
	defer close(p.writerDone)
	batch := make([][]byte, 0, maxWriteBatch)
	for {
		var f outFrame
		select {
		case <-p.done:
			return
		case f = <-p.out:
		}
		batch = append(batch[:0], f.b)
		last := f.last
	more:
		for !last && len(batch) < maxWriteBatch {
			select {
			case f = <-p.out:
				batch = append(batch, f.b)
				last = f.last
			default:
				break more
			}
		}
		err := p.conn.WriteMessages(batch)
		for i, b := range batch {
			p.conn.Recycle(b)
			batch[i] = nil
		}
		if err != nil || last {
			p.close()
			return
		}
	}
}

// send queues b, waiting at most wait for room. It reports whether b was
// queued; a frame that is not queued is dropped (the sender resends it) and
// its buffer recycled.
func (p *peer) send(b []byte, wait time.Duration) bool {
	select {
	case p.out <- outFrame{b: b}:
		return true
	case <-p.done:
		p.conn.Recycle(b)
		return false
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case p.out <- outFrame{b: b}:
		return true
	case <-p.done:
	case <-t.C:
	}
	p.conn.Recycle(b)
	return false
}

// sendLast queues b after everything already queued and closes the socket
// once it is written. If the queue is full, the socket is closed at once.
func (p *peer) sendLast(b []byte) {
	select {
	case p.out <- outFrame{b: b, last: true}:
	case <-p.done:
	default:
		p.close()
	}
}

// close closes the socket and stops the writer. Safe to call many times.
func (p *peer) close() {
	p.closeOnce.Do(func() {
		close(p.done)
		_ = p.conn.Close()
	})
}

// createDataChannel answers POST /v1/data-channel/<id> (§9.5): a fresh agent
// token for a live session.
func (s *Service) createDataChannel(w http.ResponseWriter, r *http.Request, sessionID string) {
	drainBody(r)
	s.mu.Lock()
	ss := s.sessions[sessionID]
	switch {
	case s.closed:
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "service is shutting down")
		return
	case ss == nil:
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Session "+sessionID+" not found")
		return
	case ss.terminated():
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "ValidationException", "Session is already terminated")
		return
	}
	token := newToken()
	ss.agentTokens = append(ss.agentTokens, token)
	if len(ss.agentTokens) > maxTokensPerInstance {
		ss.agentTokens = ss.agentTokens[len(ss.agentTokens)-maxTokensPerInstance:]
	}
	s.mu.Unlock()
	writeToken(w, "CreateDataChannelOutput", token)
}

// hasToken reports whether tok is among toks (constant time per entry).
func hasToken(toks []string, tok string) bool {
	if tok == "" {
		return false
	}
	ok := false
	for _, t := range toks {
		if tokenEqual(t, tok) {
			ok = true
		}
	}
	return ok
}

// serveDataChannel runs one data-channel websocket of either end (§9.6, §9.7).
func (s *Service) serveDataChannel(w http.ResponseWriter, r *http.Request, sessionID string) {
	opt := s.connOpt
	if s.opts.MaxMessageSize > 0 {
		opt.MaxMessageSize = s.opts.MaxMessageSize
	}
	conn, err := transport.Upgrade(w, r, opt)
	if err != nil {
		s.logf("data channel %s: %v", sessionID, err)
		return
	}
	untrack, ok := s.track(conn)
	if !ok {
		return
	}
	defer untrack()
	open, ok := s.readOpen(conn, "data channel "+sessionID)
	if !ok {
		_ = conn.Close()
		return
	}
	var in wire.OpenDataChannelFrame
	if err := wire.DecodeJSON(open, &in); err != nil {
		s.logf("data channel %s: bad OpenDataChannel frame", sessionID)
		_ = conn.Close()
		return
	}
	isAgent := in.IsAgent()
	role := "client"
	if isAgent {
		role = "agent"
	}

	now := s.now()
	s.mu.Lock()
	ss := s.sessions[sessionID]
	if s.closed || ss == nil {
		s.mu.Unlock()
		s.logf("data channel %s: rejected %s: unknown session", sessionID, role)
		_ = conn.Close()
		return
	}
	toks := ss.clientTokens
	if isAgent {
		toks = ss.agentTokens
	}
	if !hasToken(toks, in.TokenValue) {
		s.mu.Unlock()
		s.logf("data channel %s: rejected %s: invalid token", sessionID, role)
		_ = conn.Close()
		return
	}
	if ss.terminated() {
		target, details := ss.spec.Target, ss.details
		s.mu.Unlock()
		// A late (re)connect of a finished session: say so and hang up, so
		// the client exits instead of retrying.
		if !isAgent {
			if f, err := channelClosedFrame(now, sessionID, target, details); err == nil {
				_ = conn.WriteMessage(f)
			}
		}
		_ = conn.Close()
		return
	}
	p := newPeer(conn)
	var old *peer
	var toAgent []byte // publication message for the agent, if any
	var agent *peer
	if isAgent {
		old, ss.agent = ss.agent, p
		if ss.agentGoneTimer != nil {
			ss.agentGoneTimer.Stop()
			ss.agentGoneTimer = nil
		}
		agent = p
		switch {
		case ss.client != nil:
			toAgent, _ = publicationFrame(now, wire.TypeStartPublication)
		case !ss.nonInteractive:
			toAgent, _ = publicationFrame(now, wire.TypePausePublication)
		}
	} else {
		old, ss.client = ss.client, p
		ss.clientEverSeen = true
		ss.status = StatusConnected
		if ss.agent != nil {
			agent = ss.agent
			toAgent, _ = publicationFrame(now, wire.TypeStartPublication)
		}
		// What the agent sent while no client was attached goes first;
		// the new socket's queue is empty and longer than what is held.
		for _, f := range ss.toClient {
			p.out <- outFrame{b: f}
		}
		clear(ss.toClient)
		ss.toClient = ss.toClient[:0]
	}
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	if agent != nil && toAgent != nil {
		agent.send(toAgent, s.opts.EnqueueWait)
	}
	s.logf("data channel %s: %s connected", sessionID, role)

	if isAgent {
		s.relayFromAgent(ss, p)
	} else {
		s.relayFromClient(ss, p)
	}

	p.close()
	<-p.writerDone
	s.detach(ss, p, isAgent)
}

// relayFromClient forwards the client's input_stream_data and acknowledge
// frames to the agent, byte for byte, until the client's socket ends. A
// frame's buffer goes from the reading socket to the other side's writer,
// which recycles it: nothing is copied or allocated per frame.
func (s *Service) relayFromClient(ss *session, p *peer) {
	for {
		kind, b, err := p.conn.ReadFrame()
		if err != nil {
			return
		}
		if kind != transport.Binary {
			continue // Open*Channel frames are never forwarded
		}
		mt, seq, err := wire.DecodeHeader(b)
		if err != nil || (mt != wire.TypeInputStreamData && mt != wire.TypeAcknowledge) {
			p.conn.Recycle(b)
			continue
		}
		s.mu.Lock()
		if ss.client != p {
			s.mu.Unlock()
			p.conn.Recycle(b)
			return // replaced or the session ended
		}
		if mt == wire.TypeInputStreamData && seq > ss.lastInSeq {
			ss.lastInSeq = seq
			ss.lastActivity = s.now()
		}
		dst := ss.agent
		s.mu.Unlock()
		if dst != nil {
			dst.send(b, s.opts.EnqueueWait)
		} else {
			p.conn.Recycle(b)
		}
	}
}

// relayFromAgent forwards the agent's output_stream_data and acknowledge
// frames to the client and consumes agent_session_state, until the agent's
// socket ends.
func (s *Service) relayFromAgent(ss *session, p *peer) {
	for {
		kind, b, err := p.conn.ReadFrame()
		if err != nil {
			return
		}
		if kind != transport.Binary {
			continue
		}
		mt, seq, err := wire.DecodeHeader(b)
		if err != nil {
			p.conn.Recycle(b)
			continue
		}
		switch mt {
		case wire.TypeOutputStreamData, wire.TypeAcknowledge:
		case wire.TypeAgentSessionState:
			m, err := wire.Decode(b)
			var st wire.AgentSessionState
			if err == nil && wire.DecodeJSON(m.Payload, &st) == nil && st.SessionState == wire.SessionStateTerminating {
				s.endSession(ss, "", endByAgent)
			}
			p.conn.Recycle(b)
			continue
		default:
			p.conn.Recycle(b)
			continue
		}
		s.mu.Lock()
		if ss.agent != p {
			s.mu.Unlock()
			p.conn.Recycle(b)
			return // replaced by a newer agent socket
		}
		if mt == wire.TypeOutputStreamData && seq > ss.lastOutSeq {
			ss.lastOutSeq = seq
			ss.lastActivity = s.now()
		}
		dst := ss.client
		if dst == nil && len(ss.toClient) < maxHeldFrames {
			// No client yet (or it is reconnecting): hold the frame for
			// it rather than drop it, so that a handshake request sent
			// before the client connected does not wait for the agent's
			// retransmission timer. A paused agent sends nothing more.
			ss.toClient = append(ss.toClient, b)
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		if dst != nil {
			dst.send(b, s.opts.EnqueueWait)
		} else {
			p.conn.Recycle(b)
		}
	}
}

// detach forgets a socket that ended and applies §9.8: a client that drops
// leaves the session alive with the agent paused; an agent that drops gets
// AgentReconnectGrace to come back before the session ends.
func (s *Service) detach(ss *session, p *peer, isAgent bool) {
	now := s.now()
	var pause []byte
	var agent *peer
	s.mu.Lock()
	if isAgent {
		if ss.agent == p {
			ss.agent = nil
			if !ss.terminated() && !s.closed {
				ss.agentGoneTimer = s.opts.AfterFunc(s.opts.AgentReconnectGrace, func() {
					s.mu.Lock()
					back := ss.agent != nil
					s.mu.Unlock()
					if !back {
						s.endSession(ss, "", endByAgent)
					}
				})
			}
		}
	} else if ss.client == p {
		ss.client = nil
		if !ss.terminated() {
			ss.status = StatusDisconnected
			if ss.agent != nil && !ss.nonInteractive {
				agent = ss.agent
				pause, _ = publicationFrame(now, wire.TypePausePublication)
			}
		}
	}
	s.mu.Unlock()
	if agent != nil && pause != nil {
		agent.send(pause, s.opts.EnqueueWait)
	}
}
