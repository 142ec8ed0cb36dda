package mgs

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// topicInteractiveShell is the Topic of the interactive_shell messages the
// service sends. The agent treats it as free text (§9.4).
const topicInteractiveShell = "interactive_shell"

// newToken returns a fresh random channel token. Tokens are bearer
// credentials: they never reach logs or errors.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewSessionID returns a session id of the form <name>-<17 hex chars>, the
// shape AWS uses (§1.1). name is the caller's user or role session name; any
// character outside [A-Za-z0-9_.@-] is replaced with '-', because the agent
// uses the id as a directory name. An empty name becomes "session".
func NewSessionID(name string) string {
	var sb strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '@', r == '-':
			sb.WriteRune(r)
		default:
			sb.WriteByte('-')
		}
		if sb.Len() >= 64 {
			break
		}
	}
	n := strings.Trim(sb.String(), ".-")
	if n == "" {
		n = "session"
	}
	var b [9]byte
	_, _ = rand.Read(b[:])
	return n + "-" + hex.EncodeToString(b[:])[:17]
}

// validSessionID reports whether id is safe to use in a URL path and as a
// directory name on the agent.
func validSessionID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '@', r == '-':
		default:
			return false
		}
	}
	return true
}

// channelOutput is the XML body of a successful Create*Channel call (§9.2, §9.5).
type channelOutput struct {
	XMLName              xml.Name
	MessageSchemaVersion string `xml:"MessageSchemaVersion"`
	TokenValue           string `xml:"TokenValue"`
}

// channelOutputXML renders the 201 body of CreateControlChannel or
// CreateDataChannel.
func channelOutputXML(root, token string) []byte {
	b, _ := xml.Marshal(channelOutput{
		XMLName:              xml.Name{Local: root},
		MessageSchemaVersion: wire.MessageSchemaVersion,
		TokenValue:           token,
	})
	return b
}

// errorXML renders an error body. The agent copies error bodies into its
// error messages and looks for marker strings in them (§9.2, §9.5).
func errorXML(code, message string) []byte {
	var sb strings.Builder
	sb.WriteString("<" + code + "><Message>")
	_ = xml.EscapeText(&sb, []byte(message))
	sb.WriteString("</Message></" + code + ">")
	return []byte(sb.String())
}

// encodeFrame builds one binary frame with a fresh message id.
func encodeFrame(now time.Time, messageType string, flags uint64, body []byte) ([]byte, error) {
	m := wire.Message{
		MessageType:   messageType,
		SchemaVersion: wire.SchemaVersion,
		CreatedDate:   wire.UnixMilli(now),
		Flags:         flags,
		MessageID:     uuid.New(),
		PayloadType:   wire.PayloadNone,
		Payload:       body,
	}
	b, err := wire.Encode(&m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s frame: %w", messageType, err)
	}
	return b, nil
}

// encodeJSONFrame builds a frame whose payload is v as JSON.
func encodeJSONFrame(now time.Time, messageType string, flags uint64, v any) ([]byte, error) {
	body, err := wire.EncodeJSON(v)
	if err != nil {
		return nil, err
	}
	return encodeFrame(now, messageType, flags, body)
}

// channelClosedFrame builds a channel_closed frame (§3.4.2). An empty output
// makes the client print "Exiting session with sessionId"; otherwise it
// prints the output.
func channelClosedFrame(now time.Time, sessionID, target, output string) ([]byte, error) {
	return encodeJSONFrame(now, wire.TypeChannelClosed, wire.FlagsAck, wire.ChannelClosed{
		MessageID:     uuid.NewString(),
		CreatedDate:   strconv.FormatInt(now.UnixMilli(), 10),
		DestinationID: target,
		SessionID:     sessionID,
		MessageType:   wire.TypeChannelClosed,
		SchemaVersion: 1,
		Output:        output,
	})
}

// publicationFrame builds a start_publication or pause_publication frame.
// The agent reads no body, but empty payloads are never sent (§2.2).
func publicationFrame(now time.Time, messageType string) ([]byte, error) {
	return encodeFrame(now, messageType, wire.FlagsAck, []byte("{}"))
}

// interactiveShellFrame builds the interactive_shell message that starts a
// session on the agent (§9.4): the task payload is double-encoded into
// Content.
func interactiveShellFrame(now time.Time, p wire.AgentTaskPayload) ([]byte, error) {
	content, err := wire.EncodeJSON(p)
	if err != nil {
		return nil, err
	}
	return encodeJSONFrame(now, wire.TypeInteractiveShell, 0, wire.InteractiveShell{
		Content:       string(content),
		TaskID:        p.SessionID,
		Topic:         topicInteractiveShell,
		SchemaVersion: 1,
	})
}
