package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Field order in every struct below is the order upstream emits (Go's
// encoding/json writes struct fields in declaration order), so that the
// encodings match the golden vectors byte for byte.

// Acknowledge is the body of an acknowledge frame (§3.4.1).
type Acknowledge struct {
	AcknowledgedMessageType           string `json:"AcknowledgedMessageType"`
	AcknowledgedMessageID             string `json:"AcknowledgedMessageId"`
	AcknowledgedMessageSequenceNumber int64  `json:"AcknowledgedMessageSequenceNumber"`
	IsSequentialMessage               bool   `json:"IsSequentialMessage"`
}

// ChannelClosed is the body of a channel_closed frame (§3.4.2).
type ChannelClosed struct {
	MessageID     string `json:"MessageId"`
	CreatedDate   string `json:"CreatedDate"`
	DestinationID string `json:"DestinationId"`
	SessionID     string `json:"SessionId"`
	MessageType   string `json:"MessageType"`
	SchemaVersion int    `json:"SchemaVersion"`
	Output        string `json:"Output"`
}

// SizeData is the body of a Size payload (§3.4.3).
type SizeData struct {
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
}

// Flag is the value of a Flag payload (§3.4.4).
type Flag uint32

// Flag values (§3.4.4).
const (
	// FlagDisconnectToPort: basic port mode, the local TCP client went away.
	FlagDisconnectToPort Flag = 1
	// FlagTerminateSession: port sessions, the user quit.
	FlagTerminateSession Flag = 2
	// FlagConnectToPortError: mux mode, dialing the destination failed (agent → client).
	FlagConnectToPortError Flag = 3
)

// String returns the protocol name of f.
func (f Flag) String() string {
	switch f {
	case FlagDisconnectToPort:
		return "DisconnectToPort"
	case FlagTerminateSession:
		return "TerminateSession"
	case FlagConnectToPortError:
		return "ConnectToPortError"
	}
	return fmt.Sprintf("Flag(%d)", uint32(f))
}

// EncodeFlag returns the 4-byte big-endian payload of f.
func EncodeFlag(f Flag) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(f))
	return b
}

// DecodeFlag reads a Flag payload.
func DecodeFlag(b []byte) (Flag, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: %d bytes", ErrInvalidFlagPayload, len(b))
	}
	return Flag(binary.BigEndian.Uint32(b)), nil
}

// exitCodePrefix starts an ExitCode payload (§3.4.5).
const exitCodePrefix = "EXIT_CODE: "

// EncodeExitCode returns the ExitCode payload for code.
func EncodeExitCode(code int) []byte {
	return []byte(exitCodePrefix + strconv.Itoa(code))
}

// DecodeExitCode reads an ExitCode payload ("EXIT_CODE: <n>").
func DecodeExitCode(b []byte) (int, error) {
	s := string(b)
	if !strings.HasPrefix(s, exitCodePrefix) {
		return 0, fmt.Errorf("%w: missing %q prefix", ErrInvalidExitCodeBody, exitCodePrefix)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s[len(exitCodePrefix):]))
	if err != nil || n < -1<<31 || n > 1<<31-1 {
		return 0, fmt.Errorf("%w: not an integer", ErrInvalidExitCodeBody)
	}
	return n, nil
}

// ActionType names a handshake action (§5.3).
type ActionType string

// Handshake action types.
const (
	ActionSessionType   ActionType = "SessionType"
	ActionKMSEncryption ActionType = "KMSEncryption"
)

// ActionStatus is a client's result for one requested action (§5.4).
type ActionStatus int

// ActionStatus values.
const (
	ActionSuccess     ActionStatus = 1
	ActionFailed      ActionStatus = 2
	ActionUnsupported ActionStatus = 3
)

// HandshakeRequest is the agent's PayloadType 5 body (§5.3).
type HandshakeRequest struct {
	AgentVersion           string            `json:"AgentVersion"`
	RequestedClientActions []RequestedAction `json:"RequestedClientActions"`
}

// RequestedAction is one entry of RequestedClientActions. ActionParameters
// is kept raw: its shape depends on ActionType (SessionTypeRequest or
// KMSEncryptionRequest).
type RequestedAction struct {
	ActionType       ActionType      `json:"ActionType"`
	ActionParameters json.RawMessage `json:"ActionParameters"`
}

// SessionTypeRequest is the ActionParameters of a SessionType action.
// Properties is the document's substituted properties for Port sessions and
// null for the shell-like types.
type SessionTypeRequest struct {
	// SessionType is one of the ssmdoc.SessionType… values (§5.7).
	SessionType string          `json:"SessionType"`
	Properties  json.RawMessage `json:"Properties"`
}

// KMSEncryptionRequest is the ActionParameters of a KMSEncryption action.
type KMSEncryptionRequest struct {
	KMSKeyID  string `json:"KMSKeyId"`
	Challenge string `json:"Challenge,omitempty"`
}

// HandshakeResponse is the client's PayloadType 6 body (§5.4).
type HandshakeResponse struct {
	ClientVersion          string            `json:"ClientVersion"`
	ProcessedClientActions []ProcessedAction `json:"ProcessedClientActions"`
	Errors                 []string          `json:"Errors"`
}

// ProcessedAction is one entry of ProcessedClientActions. ActionResult is
// null for SessionType and a KMSEncryptionResponse for KMSEncryption.
type ProcessedAction struct {
	ActionType   ActionType      `json:"ActionType"`
	ActionStatus ActionStatus    `json:"ActionStatus"`
	ActionResult json.RawMessage `json:"ActionResult"`
	Error        string          `json:"Error"`
}

// KMSEncryptionResponse is the ActionResult of a KMSEncryption action.
type KMSEncryptionResponse struct {
	KMSCipherTextKey         []byte `json:"KMSCipherTextKey"`
	KMSCipherTextHash        []byte `json:"KMSCipherTextHash"`
	ChallengeAcknowledgement bool   `json:"ChallengeAcknowledgement,omitempty"`
}

// HandshakeComplete is the agent's PayloadType 7 body (§5.5).
// HandshakeTimeToComplete is integer nanoseconds on the wire.
type HandshakeComplete struct {
	HandshakeTimeToComplete time.Duration `json:"HandshakeTimeToComplete"`
	CustomerMessage         string        `json:"CustomerMessage"`
}

// EncChallenge is the body of EncChallengeRequest (8) and EncChallengeResponse (9).
// Challenge is standard padded base64 of the sealed challenge bytes.
type EncChallenge struct {
	Challenge string `json:"Challenge"`
}

// Agent session states (§3.4.9).
const (
	SessionStateConnected   = "Connected"
	SessionStateTerminating = "Terminating"
)

// AgentSessionState is the body of agent_session_state (§3.4.9).
type AgentSessionState struct {
	SchemaVersion int    `json:"SchemaVersion"`
	SessionState  string `json:"SessionState"`
	SessionID     string `json:"SessionId"`
}

// MessageSchemaVersion is the version of the Open*/Create*Channel bodies.
const MessageSchemaVersion = "1.0"

// OpenDataChannelInput is the client's first TEXT frame on the data
// channel (§1.3).
type OpenDataChannelInput struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
	TokenValue           string `json:"TokenValue"`
	ClientID             string `json:"ClientId"`
	ClientVersion        string `json:"ClientVersion,omitempty"`
}

// AgentOpenDataChannelInput is the agent's first TEXT frame on its data
// channel (§9.6). ClientInstanceId tells the service it is the agent side.
type AgentOpenDataChannelInput struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
	TokenValue           string `json:"TokenValue"`
	ClientInstanceID     string `json:"ClientInstanceId"`
	ClientID             string `json:"ClientId"`
}

// OpenDataChannelFrame is what a service reads from either side's first
// data-channel frame: the union of both shapes.
type OpenDataChannelFrame struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
	TokenValue           string `json:"TokenValue"`
	ClientID             string `json:"ClientId"`
	ClientVersion        string `json:"ClientVersion,omitempty"`
	ClientInstanceID     string `json:"ClientInstanceId,omitempty"`
}

// IsAgent reports whether the frame came from an agent (§9.7).
func (f *OpenDataChannelFrame) IsAgent() bool { return f.ClientInstanceID != "" }

// OpenControlChannelInput is the agent's first TEXT frame on the control
// channel (§9.3).
type OpenControlChannelInput struct {
	Cookie               *string `json:"Cookie"`
	MessageSchemaVersion string  `json:"MessageSchemaVersion"`
	RequestID            string  `json:"RequestId"`
	TokenValue           string  `json:"TokenValue"`
	AgentVersion         string  `json:"AgentVersion"`
	PlatformType         string  `json:"PlatformType"`
}

// InteractiveShell is the body of interactive_shell (§9.4). Content holds
// the AgentTaskPayload as a JSON string (double-encoded).
type InteractiveShell struct {
	Content       string `json:"Content"`
	TaskID        string `json:"TaskId"`
	Topic         string `json:"Topic"`
	SchemaVersion int    `json:"SchemaVersion"`
}

// AgentTaskPayload is the session description inside InteractiveShell.Content.
type AgentTaskPayload struct {
	SessionID       string                     `json:"SessionId"`
	DocumentName    string                     `json:"DocumentName"`
	RunAsUser       string                     `json:"RunAsUser"`
	SessionOwner    string                     `json:"SessionOwner"`
	Parameters      map[string]json.RawMessage `json:"Parameters"`
	DocumentContent SessionDocument            `json:"DocumentContent"`
}

// SessionDocument is the DocumentContent of a session (§9.4): a Session
// Manager document with its parameters already substituted.
type SessionDocument struct {
	SchemaVersion string                     `json:"schemaVersion"`
	Description   string                     `json:"description"`
	SessionType   string                     `json:"sessionType"`
	Inputs        SessionInputs              `json:"inputs"`
	Parameters    map[string]json.RawMessage `json:"parameters"`
	Properties    json.RawMessage            `json:"properties,omitempty"`
}

// BoolString is a boolean that also accepts "true"/"false"/"" (§9.4).
type BoolString bool

// UnmarshalJSON accepts true/false and their string forms.
func (b *BoolString) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	switch s {
	case "true", `"true"`, `"True"`, `"TRUE"`:
		*b = true
	case "false", `"false"`, `"False"`, `"FALSE"`, `""`, "null":
		*b = false
	default:
		return fmt.Errorf("%w: %s is not a boolean", ErrInvalidBody, truncate(s, 32))
	}
	return nil
}

// SessionInputs are the document inputs of SSM-SessionManagerRunShell and friends.
type SessionInputs struct {
	S3BucketName                string       `json:"s3BucketName"`
	S3KeyPrefix                 string       `json:"s3KeyPrefix"`
	S3EncryptionEnabled         BoolString   `json:"s3EncryptionEnabled"`
	CloudWatchLogGroupName      string       `json:"cloudWatchLogGroupName"`
	CloudWatchStreamingEnabled  BoolString   `json:"cloudWatchStreamingEnabled"`
	CloudWatchEncryptionEnabled BoolString   `json:"cloudWatchEncryptionEnabled"`
	KMSKeyID                    string       `json:"kmsKeyId"`
	RunAsEnabled                BoolString   `json:"runAsEnabled"`
	RunAsDefaultUser            string       `json:"runAsDefaultUser"`
	IdleSessionTimeout          string       `json:"idleSessionTimeout,omitempty"`
	MaxSessionDuration          string       `json:"maxSessionDuration,omitempty"`
	ShellProfile                ShellProfile `json:"shellProfile"`
}

// ShellProfile holds the commands run at shell start per platform.
type ShellProfile struct {
	Linux   string `json:"linux"`
	Windows string `json:"windows"`
}

// AgentTaskComplete is the body of agent_task_complete (§9.4).
type AgentTaskComplete struct {
	SchemaVersion    int    `json:"SchemaVersion"`
	TaskID           string `json:"TaskId"`
	Topic            string `json:"Topic"`
	FinalTaskStatus  string `json:"FinalTaskStatus"`
	IsRoutingFailure bool   `json:"IsRoutingFailure"`
	AwsAccountID     string `json:"AwsAccountId"`
	InstanceID       string `json:"InstanceId"`
	Output           string `json:"Output"`
	S3Bucket         string `json:"S3Bucket"`
	S3UrlSuffix      string `json:"S3UrlSuffix"`
	CwlGroup         string `json:"CwlGroup"`
	CwlStream        string `json:"CwlStream"`
	RetryNumber      int    `json:"RetryNumber"`
}

// AgentTaskAcknowledge is the body of agent_task_acknowledge (§9.4).
type AgentTaskAcknowledge struct {
	SchemaVersion int    `json:"SchemaVersion"`
	MessageID     string `json:"MessageId"`
	TaskID        string `json:"TaskId"`
	Topic         string `json:"Topic"`
}

// DecodeJSON decodes a JSON body into v, wrapping failures in
// ErrInvalidBody. Trailing data after the JSON value is refused.
func DecodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %T: %s", ErrInvalidBody, v, truncate(err.Error(), 120))
	}
	return nil
}

// EncodeJSON encodes v as upstream does (encoding/json, no trailing newline).
func EncodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}

// UnixMilli converts t to the CreatedDate representation.
func UnixMilli(t time.Time) uint64 { return uint64(t.UnixMilli()) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
