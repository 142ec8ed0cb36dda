// Package wire encodes and decodes the Session Manager data-channel frame
// ("ClientMessage"/"AgentMessage") and its payload bodies, as described in
// SESSION-PROTOCOL.md §2 and §3.
//
// The package is pure: no I/O, no clock, no logging. Callers supply the
// creation time and message ID of every frame they build.
package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Frame layout constants (§2). Offsets are from the start of the frame.
const (
	// HeaderLength is the value of the HeaderLength field: the offset of
	// PayloadLength, not the length of the whole header.
	HeaderLength = 116
	// FrameHeaderSize is the number of bytes before the payload (120).
	FrameHeaderSize = HeaderLength + 4
	// MessageTypeSize is the fixed width of the space-padded MessageType field.
	MessageTypeSize = 32
	// SchemaVersion is the only schema version both ends send.
	SchemaVersion = 1
	// MaxFrameSize bounds what Decode accepts. Upstream messages are about
	// 1 KiB; ssmkit's own ends send at most a few tens of KiB. Anything larger
	// is refused rather than processed.
	MaxFrameSize = 8 << 20

	offHeaderLength  = 0
	offMessageType   = 4
	offSchemaVersion = 36
	offCreatedDate   = 40
	offSequence      = 48
	offFlags         = 56
	offMessageID     = 64
	offDigest        = 80
	offPayloadType   = 112
	offPayloadLength = 116
)

// MessageType names (§3.1).
const (
	// TypeInputStreamData carries client → agent stream messages (sequenced, acked).
	TypeInputStreamData = "input_stream_data"
	// TypeOutputStreamData carries agent → client stream messages (sequenced, acked).
	TypeOutputStreamData = "output_stream_data"
	// TypeAcknowledge acknowledges one stream message by sequence number.
	TypeAcknowledge = "acknowledge"
	// TypeChannelClosed is sent by the service to end a session.
	TypeChannelClosed = "channel_closed"
	// TypeStartPublication is sent by the service when the peer is back.
	TypeStartPublication = "start_publication"
	// TypePausePublication is sent by the service while the peer is away.
	TypePausePublication = "pause_publication"
	// TypeAgentSessionState is sent by the agent to the service (Connected/Terminating).
	TypeAgentSessionState = "agent_session_state"
	// TypeInteractiveShell starts a session on the control channel.
	TypeInteractiveShell = "interactive_shell"
	// TypeAgentTaskComplete reports a finished session on the control channel.
	TypeAgentTaskComplete = "agent_task_complete"
	// TypeAgentTaskAcknowledge acks agent_task_complete on the control channel.
	TypeAgentTaskAcknowledge = "agent_task_acknowledge"
	// TypeAgentTelemetry is agent telemetry on the control channel; ignored.
	TypeAgentTelemetry = "agent_telemetry"
	// TypeAgentJob and the following are Run Command over MGS (out of scope,
	// but known so that they decode).
	TypeAgentJob = "agent_job"
	// TypeAgentJobAck acknowledges an agent_job.
	TypeAgentJobAck = "agent_job_ack"
	// TypeAgentJobReply is an agent's reply to an agent_job.
	TypeAgentJobReply = "agent_job_reply"
	// TypeAgentJobReplyAck acknowledges an agent_job_reply.
	TypeAgentJobReplyAck = "agent_job_reply_ack"
	// TypeAgentTaskReply is an agent's task reply.
	TypeAgentTaskReply = "agent_task_reply"
)

// knownTypes interns MessageType strings so that decoding does not allocate.
var knownTypes = [...]string{
	TypeInputStreamData, TypeOutputStreamData, TypeAcknowledge, TypeChannelClosed,
	TypeStartPublication, TypePausePublication, TypeAgentSessionState,
	TypeInteractiveShell, TypeAgentTaskComplete, TypeAgentTaskAcknowledge,
	TypeAgentTelemetry, TypeAgentJob, TypeAgentJobAck, TypeAgentJobReply,
	TypeAgentJobReplyAck, TypeAgentTaskReply,
}

// PayloadType says how a stream message's payload is to be read (§3.2).
type PayloadType uint32

// PayloadType values (§3.2).
const (
	PayloadNone                 PayloadType = 0  // JSON bodies of non-stream messages
	PayloadOutput               PayloadType = 1  // raw bytes: stdin, stdout, port/smux bytes
	PayloadError                PayloadType = 2  // defined, never sent
	PayloadSize                 PayloadType = 3  // JSON {"cols","rows"}
	PayloadParameter            PayloadType = 4  // defined, unused
	PayloadHandshakeRequest     PayloadType = 5  // JSON, agent → client
	PayloadHandshakeResponse    PayloadType = 6  // JSON, client → agent
	PayloadHandshakeComplete    PayloadType = 7  // JSON, agent → client
	PayloadEncChallengeRequest  PayloadType = 8  // JSON, agent → client
	PayloadEncChallengeResponse PayloadType = 9  // JSON, client → agent
	PayloadFlag                 PayloadType = 10 // 4-byte big-endian uint32
	PayloadStdErr               PayloadType = 11 // raw bytes, agent → client
	PayloadExitCode             PayloadType = 12 // ASCII "EXIT_CODE: <n>", agent → client
)

// String returns the protocol name of t.
func (t PayloadType) String() string {
	switch t {
	case PayloadNone:
		return "None"
	case PayloadOutput:
		return "Output"
	case PayloadError:
		return "Error"
	case PayloadSize:
		return "Size"
	case PayloadParameter:
		return "Parameter"
	case PayloadHandshakeRequest:
		return "HandshakeRequest"
	case PayloadHandshakeResponse:
		return "HandshakeResponse"
	case PayloadHandshakeComplete:
		return "HandshakeComplete"
	case PayloadEncChallengeRequest:
		return "EncChallengeRequest"
	case PayloadEncChallengeResponse:
		return "EncChallengeResponse"
	case PayloadFlag:
		return "Flag"
	case PayloadStdErr:
		return "StdErr"
	case PayloadExitCode:
		return "ExitCode"
	}
	return fmt.Sprintf("PayloadType(%d)", uint32(t))
}

// Header flag bits (§3.3). No receiver acts on them; senders emit them for fidelity.
const (
	// FlagSYN marks the first message of a stream (agent output seq 0).
	FlagSYN uint64 = 1
	// FlagFIN marks the last message of a stream.
	FlagFIN uint64 = 2
	// FlagsAck is the Flags value of acknowledge and agent_session_state frames.
	FlagsAck uint64 = FlagSYN | FlagFIN
)

// Decode errors. Every malformed frame yields one of these (wrapped in a
// *FrameError that says where), never a panic.
var (
	ErrShortFrame          = errors.New("frame shorter than its header")
	ErrHeaderLength        = errors.New("header length points past the end of the frame")
	ErrEmptyMessageType    = errors.New("empty message type")
	ErrUnknownMessageType  = errors.New("unknown message type")
	ErrZeroCreatedDate     = errors.New("created date is zero")
	ErrDigestMismatch      = errors.New("payload digest mismatch")
	ErrPayloadLength       = errors.New("payload length does not match the payload")
	ErrFrameTooLarge       = errors.New("frame larger than the maximum frame size")
	ErrEmptyPayload        = errors.New("refusing to encode an empty payload")
	ErrMessageTypeTooLong  = errors.New("message type longer than 32 bytes")
	ErrInvalidMessageType  = errors.New("message type contains non-printable bytes")
	ErrSchemaVersion       = errors.New("unsupported schema version")
	ErrInvalidBody         = errors.New("invalid payload body")
	ErrInvalidFlagPayload  = errors.New("flag payload is not 4 bytes")
	ErrInvalidExitCodeBody = errors.New("invalid exit code payload")
)

// FrameError describes why a frame could not be decoded.
type FrameError struct {
	Err         error  // one of the Err* sentinels
	MessageType string // the frame's message type, when it could be read
	Detail      string
}

func (e *FrameError) Error() string {
	s := "decoding frame: " + e.Err.Error()
	if e.MessageType != "" {
		s += " (" + e.MessageType + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *FrameError) Unwrap() error { return e.Err }

// Message is one binary frame. Payload aliases the buffer it was decoded
// from; copy it if the buffer is reused.
type Message struct {
	MessageType    string
	SchemaVersion  uint32
	CreatedDate    uint64 // Unix epoch milliseconds
	SequenceNumber int64
	Flags          uint64
	MessageID      uuid.UUID // canonical byte order (the wire swaps the halves)
	PayloadDigest  [sha256.Size]byte
	PayloadType    PayloadType
	PayloadLength  uint32
	Payload        []byte
}

// IsStream reports whether m is a sequenced, acknowledged stream message.
func (m *Message) IsStream() bool {
	return m.MessageType == TypeInputStreamData || m.MessageType == TypeOutputStreamData
}

// Decode parses one frame. Validation follows the client's rules (§2.3):
// HeaderLength non-zero and in range, a message type, a non-zero
// CreatedDate and a matching digest, except for the publication messages,
// which upstream takes without validation. Unlike upstream, the declared
// PayloadLength must match the payload, and unknown message types are
// reported as ErrUnknownMessageType (with the returned Message filled in, so
// a caller that wants to ignore them can).
func Decode(b []byte) (Message, error) {
	m, err := DecodeUnverified(b)
	if err != nil || m.MessageType == TypeStartPublication || m.MessageType == TypePausePublication {
		return m, err
	}
	return m, m.VerifyDigest()
}

// VerifyDigest checks PayloadDigest against the payload (an empty payload
// is not checked, as upstream does).
func (m *Message) VerifyDigest() error {
	if len(m.Payload) != 0 {
		if sum := sha256.Sum256(m.Payload); sum != m.PayloadDigest {
			return &FrameError{Err: ErrDigestMismatch, MessageType: m.MessageType}
		}
	}
	return nil
}

// DecodeUnverified is Decode without the digest check, for a receiver that
// authenticates the payload another way: an AES-GCM sealed payload carries
// its own, stronger check, so hashing it as well only costs time.
func DecodeUnverified(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxFrameSize {
		return m, &FrameError{Err: ErrFrameTooLarge, Detail: fmt.Sprintf("%d bytes", len(b))}
	}
	if len(b) < FrameHeaderSize {
		return m, &FrameError{Err: ErrShortFrame, Detail: fmt.Sprintf("%d bytes", len(b))}
	}
	hl := binary.BigEndian.Uint32(b[offHeaderLength:])
	if hl == 0 || hl < HeaderLength || uint64(hl)+4 > uint64(len(b)) {
		return m, &FrameError{Err: ErrHeaderLength, Detail: fmt.Sprintf("header length %d, frame %d bytes", hl, len(b))}
	}
	mt, err := parseMessageType(b[offMessageType : offMessageType+MessageTypeSize])
	if err != nil {
		return m, &FrameError{Err: err}
	}
	m.MessageType = mt
	m.SchemaVersion = binary.BigEndian.Uint32(b[offSchemaVersion:])
	m.CreatedDate = binary.BigEndian.Uint64(b[offCreatedDate:])
	m.SequenceNumber = int64(binary.BigEndian.Uint64(b[offSequence:]))
	m.Flags = binary.BigEndian.Uint64(b[offFlags:])
	putWireUUID(&m.MessageID, b[offMessageID:offMessageID+16])
	copy(m.PayloadDigest[:], b[offDigest:offDigest+sha256.Size])
	m.PayloadType = PayloadType(binary.BigEndian.Uint32(b[offPayloadType:]))
	m.PayloadLength = binary.BigEndian.Uint32(b[offPayloadLength:])
	m.Payload = b[hl+4:]

	if m.MessageType == "" {
		return m, &FrameError{Err: ErrEmptyMessageType}
	}
	if !isKnownType(m.MessageType) {
		return m, &FrameError{Err: ErrUnknownMessageType, MessageType: m.MessageType}
	}
	if m.MessageType == TypeStartPublication || m.MessageType == TypePausePublication {
		return m, nil
	}
	if int(m.PayloadLength) != len(m.Payload) {
		return m, &FrameError{Err: ErrPayloadLength, MessageType: m.MessageType,
			Detail: fmt.Sprintf("declared %d, got %d", m.PayloadLength, len(m.Payload))}
	}
	if m.CreatedDate == 0 {
		return m, &FrameError{Err: ErrZeroCreatedDate, MessageType: m.MessageType}
	}
	return m, nil
}

// DecodeHeader reads only the MessageType and SequenceNumber of a frame,
// without validating the payload. A relay uses it to route frames it
// forwards byte for byte.
func DecodeHeader(b []byte) (messageType string, seq int64, err error) {
	if len(b) < FrameHeaderSize {
		return "", 0, &FrameError{Err: ErrShortFrame, Detail: fmt.Sprintf("%d bytes", len(b))}
	}
	hl := binary.BigEndian.Uint32(b[offHeaderLength:])
	if hl < HeaderLength || uint64(hl)+4 > uint64(len(b)) {
		return "", 0, &FrameError{Err: ErrHeaderLength}
	}
	mt, err := parseMessageType(b[offMessageType : offMessageType+MessageTypeSize])
	if err != nil {
		return "", 0, &FrameError{Err: err}
	}
	if mt == "" {
		return "", 0, &FrameError{Err: ErrEmptyMessageType}
	}
	return mt, int64(binary.BigEndian.Uint64(b[offSequence:])), nil
}

// EncodedLen is the length of m's encoding.
func (m *Message) EncodedLen() int { return FrameHeaderSize + len(m.Payload) }

// AppendEncode appends the encoding of m to dst. PayloadLength and
// PayloadDigest are computed from Payload (m's own fields are ignored and
// updated to the values written). An empty payload is refused (§2.2).
func AppendEncode(dst []byte, m *Message) ([]byte, error) {
	if err := checkEncodable(m); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, make([]byte, FrameHeaderSize)...)
	putHeader(dst[start:], m)
	return append(dst, m.Payload...), nil
}

// PutHeader writes the 120-byte header of m into frame[:FrameHeaderSize]
// for a payload the caller has already placed at frame[FrameHeaderSize:]
// (m.Payload must be that slice). It lets a sender encrypt straight into
// the frame buffer instead of copying the payload. PayloadLength and
// PayloadDigest are computed and stored in m.
func PutHeader(frame []byte, m *Message) error {
	if err := checkEncodable(m); err != nil {
		return err
	}
	if len(frame) < FrameHeaderSize+len(m.Payload) {
		return ErrShortFrame
	}
	putHeader(frame, m)
	return nil
}

func checkEncodable(m *Message) error {
	switch {
	case len(m.Payload) == 0:
		return ErrEmptyPayload
	case len(m.MessageType) == 0:
		return ErrEmptyMessageType
	case len(m.MessageType) > MessageTypeSize:
		return ErrMessageTypeTooLong
	case FrameHeaderSize+len(m.Payload) > MaxFrameSize:
		return ErrFrameTooLarge
	}
	return nil
}

func putHeader(h []byte, m *Message) {
	m.PayloadLength = uint32(len(m.Payload))
	m.PayloadDigest = sha256.Sum256(m.Payload)
	binary.BigEndian.PutUint32(h[offHeaderLength:], HeaderLength)
	mt := h[offMessageType : offMessageType+MessageTypeSize]
	for i := range mt {
		mt[i] = ' '
	}
	copy(mt, m.MessageType)
	binary.BigEndian.PutUint32(h[offSchemaVersion:], m.SchemaVersion)
	binary.BigEndian.PutUint64(h[offCreatedDate:], m.CreatedDate)
	binary.BigEndian.PutUint64(h[offSequence:], uint64(m.SequenceNumber))
	binary.BigEndian.PutUint64(h[offFlags:], m.Flags)
	putUUIDWire(h[offMessageID:offMessageID+16], m.MessageID)
	copy(h[offDigest:], m.PayloadDigest[:])
	binary.BigEndian.PutUint32(h[offPayloadType:], uint32(m.PayloadType))
	binary.BigEndian.PutUint32(h[offPayloadLength:], m.PayloadLength)
}

// Encode returns the encoding of m in a new buffer (see AppendEncode).
func Encode(m *Message) ([]byte, error) {
	return AppendEncode(make([]byte, 0, m.EncodedLen()), m)
}

// putUUIDWire writes u with its 8-byte halves swapped (§2.1).
func putUUIDWire(dst []byte, u uuid.UUID) {
	copy(dst[0:8], u[8:16])
	copy(dst[8:16], u[0:8])
}

// putWireUUID reads a swapped wire UUID back into canonical order.
func putWireUUID(u *uuid.UUID, src []byte) {
	copy(u[0:8], src[8:16])
	copy(u[8:16], src[0:8])
}

// parseMessageType trims NULs from both ends and then whitespace, as both
// upstream ends do, and refuses non-printable bytes.
func parseMessageType(field []byte) (string, error) {
	field = bytes.Trim(field, "\x00")
	field = bytes.TrimSpace(field)
	for _, c := range field {
		if c < 0x21 || c > 0x7e {
			return "", ErrInvalidMessageType
		}
	}
	for _, k := range knownTypes {
		if string(field) == k { // no allocation: compiler-optimised comparison
			return k, nil
		}
	}
	return string(field), nil
}

func isKnownType(s string) bool {
	for _, k := range knownTypes {
		if s == k {
			return true
		}
	}
	return false
}
