// Package datachannel is the reliable, optionally encrypted Session Manager
// data channel (SESSION-PROTOCOL.md §4–§6), usable in both roles: the client
// (what a user runs) and the agent (what runs on the instance).
//
// A Channel runs over any MessageConn (a websocket from the transport
// package, an in-memory pipe, a framed net.Conn). It numbers, acknowledges,
// reorders, de-duplicates and retransmits stream messages, runs the
// handshake and KMS encryption, and gives its caller an io.ReadWriter of
// application bytes plus typed control messages (terminal size, flags, exit
// codes). Nothing above this package sees sequence numbers.
package datachannel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// MessageConn carries whole protocol messages. ReadMessage returns the next
// binary message, which then belongs to the caller; WriteMessage must be
// safe for concurrent callers, and must not keep b once it returns (the
// channel reuses its buffers).
type MessageConn interface {
	ReadMessage() ([]byte, error)
	WriteMessage(b []byte) error
	Close() error
}

// Role says which end of the session a Channel plays.
type Role int

// Roles.
const (
	RoleClient Role = iota + 1 // sends input_stream_data, receives output_stream_data
	RoleAgent                  // sends output_stream_data, receives input_stream_data
)

func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleAgent:
		return "agent"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// DefaultClientVersion is the version the client role reports. It must be a
// 4-part numeric version above 1.2.331.0 so that an agent picks smux with
// keepalive off (SESSION-PROTOCOL.md §1.3, §8.7).
const DefaultClientVersion = "1.2.677.0"

// DefaultAgentVersion is the version the agent role reports. It must be a
// 4-part numeric version above 3.1.1511.0 for the same reason (§11.12).
const DefaultAgentVersion = "3.3.1142.0"

// Packet is one application message other than plain output bytes: a
// terminal size, a flag, stderr bytes or an exit code, in stream order.
type Packet struct {
	Type wire.PayloadType
	Data []byte
}

// ErrNotReady, returned by a ControlHandler, leaves the message unacked so
// that the sender retransmits it later (§4.8).
var ErrNotReady = errors.New("handler not ready")

// ControlHandler receives the non-Output stream messages in order. It runs
// on the channel's receive goroutine and must not block for long.
type ControlHandler func(Packet) error

// AgentSession describes the session an agent-role Channel serves; it
// decides whether and how the handshake runs (§5.1).
type AgentSession struct {
	// SessionType is one of the wire.SessionType* names.
	SessionType string
	// Properties are the document's substituted properties (Port only).
	Properties json.RawMessage
	// KMSKeyID turns on KMS encryption (never for Port sessions).
	KMSKeyID string
	// RequireChallenge refuses clients that do not acknowledge the random
	// challenge (the agent's Kms.RequireKMSChallengeResponse).
	RequireChallenge bool
	// SeparateOutput marks NonInteractiveCommands with separate streams;
	// it only affects the upgrade hint for very old clients.
	SeparateOutput bool
}

// Config configures a Channel. Zero values take the defaults documented on
// each field.
type Config struct {
	Role Role
	// SessionID and TargetID (the instance id) bind the KMS data key.
	SessionID string
	TargetID  string
	// ClientVersion is what the client role reports (DefaultClientVersion).
	ClientVersion string
	// AgentVersion is what the agent role reports (DefaultAgentVersion).
	AgentVersion string
	// Agent describes the session for the agent role.
	Agent AgentSession
	// KeyService performs the KMS calls of §6; required when a session is
	// encrypted.
	KeyService encryption.KeyService

	// CheckDigests drops received messages whose payload does not match
	// their SHA-256 digest, as upstream's client does (§2.3; its agent does
	// not). It is off by default: the digest is not keyed, so it protects
	// against nothing that TLS between the service and each end (wss) does
	// not already cover, and AES-GCM for KMS sessions, while hashing every
	// byte received costs about 0.7 s of CPU per GiB. Digests are always
	// computed for what is sent.
	CheckDigests bool

	// MaxPayloadSize splits Write calls into messages of at most this many
	// bytes (default 32 KiB). Upstream ends send 1 KiB.
	MaxPayloadSize int
	// SendWindow bounds the unacknowledged stream messages (default 1024);
	// a full window blocks Write: back-pressure instead of unbounded memory.
	SendWindow int
	// SendWindowBytes bounds their bytes (default 4 MiB).
	SendWindowBytes int
	// ReceiveBuffer bounds in-order bytes waiting for Read (default 1 MiB):
	// past it messages are still taken but acknowledged only as Read makes
	// room, so the sender's window holds the sender back; past it plus
	// SendWindowBytes (a peer's window, if configured like this end) they
	// are left unacknowledged (§4.8). A reader that keeps up never gets
	// near it; one that does not should not make the process grow.
	ReceiveBuffer int
	// ReorderBuffer bounds out-of-order messages held (default 10 000 for
	// the client and 100 000 for the agent, as upstream).
	ReorderBuffer int
	// ReorderBufferBytes bounds their bytes (default 4 MiB): messages
	// behind a lost one, until its retransmission arrives.
	ReorderBufferBytes int

	// ResendInterval is the retransmission timer tick (default 100 ms).
	ResendInterval time.Duration
	// InitialRTO is the retransmission timeout before any sample (200 ms).
	InitialRTO time.Duration
	// MaxRTO caps the retransmission timeout (1 s).
	MaxRTO time.Duration
	// GiveUpAfter fails the channel with ErrResendTimeout when the oldest
	// unacknowledged message has waited this long (client default 5 min;
	// the agent never gives up: -1 disables).
	GiveUpAfter time.Duration
	// HandshakeTimeout bounds each wait of the agent's handshake (15 s).
	HandshakeTimeout time.Duration
	// HandshakeSettle holds the client's input for this long after the
	// agent's HandshakeComplete (default 20 ms; negative: not at all).
	// The official agent (3.3.1142.0, datachannel.PerformHandshake) sends
	// HandshakeComplete and only then marks its handshake complete; input
	// that arrives in between is acknowledged and thrown away ("Handshake
	// still in progress, ignore stream data message"), so a port
	// session's first stream never opens. Through AWS the client's first
	// input cannot come back sooner than a round trip through the service;
	// next to the agent (the sandbox) it came back 3.5 ms later while the
	// agent's goroutine was still descheduled, and the session hung.
	HandshakeSettle time.Duration

	// OnControl receives Size, Flag, StdErr and ExitCode messages.
	OnControl ControlHandler
	// Reconnect, when set, is called after the connection fails; it returns
	// a new connection on which the session carries on (ResumeSession for
	// a client, CreateDataChannel for an agent). Up to 6 attempts are made
	// with exponential back-off (§10.3).
	Reconnect func(ctx context.Context) (MessageConn, error)
	// Logf, when set, receives debug lines. It never sees payloads, keys or
	// tokens.
	Logf func(format string, args ...any)

	now func() time.Time // tests
}

// Config defaults.
const (
	DefaultMaxPayloadSize     = 32 << 10
	DefaultSendWindow         = 1024
	DefaultSendWindowBytes    = 4 << 20
	DefaultReceiveBuffer      = 1 << 20
	DefaultReorderBytes       = 4 << 20
	DefaultResendInterval     = 100 * time.Millisecond
	DefaultInitialRTO         = 200 * time.Millisecond
	DefaultMaxRTO             = time.Second
	DefaultClientGiveUp       = 5 * time.Minute
	DefaultHandshakeTimeout   = 15 * time.Second
	DefaultHandshakeSettle    = 20 * time.Millisecond
	clientReorderBuffer       = 10000
	agentReorderBuffer        = 100000
	clockGranularity          = 10 * time.Millisecond
	initialSRTT               = 100 * time.Millisecond
	reconnectAttempts         = 6
	reconnectInitialDelay     = 100 * time.Millisecond
	reconnectMaxDelay         = 5 * time.Second
	maxAllowedPayloadOverhead = 64 // encryption overhead and slack under wire.MaxFrameSize
)

// ErrInvalidConfig is wrapped by configuration errors from New.
var ErrInvalidConfig = errors.New("invalid data channel config")

func (c Config) withDefaults() (Config, error) {
	if c.Role != RoleClient && c.Role != RoleAgent {
		return c, fmt.Errorf("%w: role must be RoleClient or RoleAgent", ErrInvalidConfig)
	}
	if c.ClientVersion == "" {
		c.ClientVersion = DefaultClientVersion
	}
	if c.AgentVersion == "" {
		c.AgentVersion = DefaultAgentVersion
	}
	if c.MaxPayloadSize == 0 {
		c.MaxPayloadSize = DefaultMaxPayloadSize
	}
	if c.MaxPayloadSize < 1 || c.MaxPayloadSize > wire.MaxFrameSize-wire.FrameHeaderSize-maxAllowedPayloadOverhead {
		return c, fmt.Errorf("%w: MaxPayloadSize %d out of range", ErrInvalidConfig, c.MaxPayloadSize)
	}
	if c.SendWindow == 0 {
		c.SendWindow = DefaultSendWindow
	}
	if c.SendWindowBytes == 0 {
		c.SendWindowBytes = DefaultSendWindowBytes
	}
	if c.ReceiveBuffer == 0 {
		c.ReceiveBuffer = DefaultReceiveBuffer
	}
	if c.ReorderBuffer == 0 {
		c.ReorderBuffer = clientReorderBuffer
		if c.Role == RoleAgent {
			c.ReorderBuffer = agentReorderBuffer
		}
	}
	if c.ReorderBufferBytes == 0 {
		c.ReorderBufferBytes = DefaultReorderBytes
	}
	if c.SendWindow < 1 || c.SendWindowBytes < 1 || c.ReceiveBuffer < 1 || c.ReorderBuffer < 1 || c.ReorderBufferBytes < 1 {
		return c, fmt.Errorf("%w: buffer sizes must be positive", ErrInvalidConfig)
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
	if c.InitialRTO == 0 {
		c.InitialRTO = DefaultInitialRTO
	}
	if c.MaxRTO == 0 {
		c.MaxRTO = DefaultMaxRTO
	}
	if c.ResendInterval < 0 || c.InitialRTO < 0 || c.MaxRTO < 0 {
		return c, fmt.Errorf("%w: durations must be positive", ErrInvalidConfig)
	}
	if c.GiveUpAfter == 0 && c.Role == RoleClient {
		c.GiveUpAfter = DefaultClientGiveUp
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.HandshakeSettle == 0 {
		c.HandshakeSettle = DefaultHandshakeSettle
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.Role == RoleAgent {
		if !ssmdoc.ValidSessionType(c.Agent.SessionType) {
			return c, fmt.Errorf("%w: unknown agent session type %q", ErrInvalidConfig, c.Agent.SessionType)
		}
	}
	return c, nil
}

// encrypted reports whether the agent-role session uses KMS (§5.1).
func (a AgentSession) encrypted() bool {
	return a.KMSKeyID != "" && a.SessionType != ssmdoc.SessionTypePort
}

// handshakeRequired reports whether the agent runs a handshake (§5.1).
func (a AgentSession) handshakeRequired() bool {
	switch a.SessionType {
	case ssmdoc.SessionTypeNonInteractiveCommands, ssmdoc.SessionTypePort:
		return true
	}
	return a.encrypted()
}
