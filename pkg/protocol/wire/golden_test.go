package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/uuid"
)

type vectorFile struct {
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name           string          `json:"name"`
	WebsocketFrame string          `json:"websocket_frame"`
	MessageType    string          `json:"message_type"`
	SchemaVersion  uint32          `json:"schema_version"`
	CreatedDateMS  uint64          `json:"created_date_ms"`
	SequenceNumber int64           `json:"sequence_number"`
	Flags          uint64          `json:"flags"`
	MessageID      string          `json:"message_id"`
	PayloadType    uint32          `json:"payload_type"`
	PayloadHex     string          `json:"payload_hex"`
	PayloadLength  int             `json:"payload_length"`
	PayloadSHA256  string          `json:"payload_sha256"`
	MessageIDWire  string          `json:"message_id_wire_bytes_hex"`
	TotalLength    int             `json:"total_length"`
	Hex            string          `json:"hex"`
	PayloadJSON    json.RawMessage `json:"payload_json"`
}

// loadVectors reads the golden vectors: testdata/vectors.json, a copy of
// ../shared/protocol/vectors.json committed so that the test runs on any
// checkout, or $SSMKIT_PROTOCOL_VECTORS. When the shared original sits beside
// the repository, the copy must be identical to it, so a new vector set is
// never tested against a stale copy.
func loadVectors(t *testing.T) []vector {
	t.Helper()
	path := os.Getenv("SSMKIT_PROTOCOL_VECTORS")
	if path == "" {
		path = filepath.Join("testdata", "vectors.json")
		_, file, _, _ := runtime.Caller(0)
		shared := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "shared", "protocol", "vectors.json")
		if orig, err := os.ReadFile(shared); err == nil {
			copied, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading vectors: %v", err)
			}
			if !bytes.Equal(orig, copied) {
				t.Fatalf("%s differs from %s: copy the shared vectors into testdata", path, shared)
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	if len(vf.Vectors) == 0 {
		t.Fatalf("%s holds no vectors", path)
	}
	return vf.Vectors
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

func TestGoldenVectors(t *testing.T) {
	vs := loadVectors(t)
	binaries := 0
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			frame := mustHex(t, v.Hex)
			if len(frame) != v.TotalLength {
				t.Fatalf("vector length %d, total_length says %d", len(frame), v.TotalLength)
			}
			if v.WebsocketFrame == "text" {
				testTextVector(t, v, frame)
				return
			}
			binaries++
			m, err := Decode(frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := Message{
				MessageType:    v.MessageType,
				SchemaVersion:  v.SchemaVersion,
				CreatedDate:    v.CreatedDateMS,
				SequenceNumber: v.SequenceNumber,
				Flags:          v.Flags,
				MessageID:      uuid.MustParse(v.MessageID),
				PayloadType:    PayloadType(v.PayloadType),
				PayloadLength:  uint32(v.PayloadLength),
				Payload:        mustHex(t, v.PayloadHex),
			}
			copy(want.PayloadDigest[:], mustHex(t, v.PayloadSHA256))
			if m.MessageType != want.MessageType || m.SchemaVersion != want.SchemaVersion ||
				m.CreatedDate != want.CreatedDate || m.SequenceNumber != want.SequenceNumber ||
				m.Flags != want.Flags || m.MessageID != want.MessageID ||
				m.PayloadDigest != want.PayloadDigest || m.PayloadType != want.PayloadType ||
				m.PayloadLength != want.PayloadLength || !bytes.Equal(m.Payload, want.Payload) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", m, want)
			}
			if got := hex.EncodeToString(frame[offMessageID : offMessageID+16]); got != v.MessageIDWire {
				t.Fatalf("message id wire bytes %s, want %s", got, v.MessageIDWire)
			}
			// The listed fields encode back to the identical bytes.
			fields := want
			fields.PayloadDigest = [32]byte{}
			fields.PayloadLength = 0
			out, err := Encode(&fields)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(out, frame) {
				t.Fatalf("re-encoded frame differs\n got %x\nwant %x", out, frame)
			}
			if len(v.PayloadJSON) > 0 {
				testBodyVector(t, v, m)
			}
			if m.PayloadType == PayloadFlag {
				f, err := DecodeFlag(m.Payload)
				if err != nil {
					t.Fatalf("DecodeFlag: %v", err)
				}
				if !bytes.Equal(EncodeFlag(f), m.Payload) {
					t.Fatalf("flag %v re-encodes differently", f)
				}
			}
		})
	}
}

// testBodyVector decodes the JSON body into its typed struct and checks that
// the struct encodes back to the identical payload bytes.
func testBodyVector(t *testing.T, v vector, m Message) {
	t.Helper()
	var body any
	switch {
	case m.MessageType == TypeAcknowledge:
		body = new(Acknowledge)
	case m.MessageType == TypeChannelClosed:
		body = new(ChannelClosed)
	case m.MessageType == TypeAgentSessionState:
		body = new(AgentSessionState)
	case m.PayloadType == PayloadSize:
		body = new(SizeData)
	case m.PayloadType == PayloadHandshakeRequest:
		body = new(HandshakeRequest)
	case m.PayloadType == PayloadHandshakeResponse:
		body = new(HandshakeResponse)
	case m.PayloadType == PayloadHandshakeComplete:
		body = new(HandshakeComplete)
	case m.PayloadType == PayloadEncChallengeRequest, m.PayloadType == PayloadEncChallengeResponse:
		body = new(EncChallenge)
	default:
		t.Fatalf("no body type for %s/%v", m.MessageType, m.PayloadType)
	}
	if err := DecodeJSON(m.Payload, body); err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	out, err := EncodeJSON(body)
	if err != nil {
		t.Fatalf("EncodeJSON: %v", err)
	}
	if !bytes.Equal(out, m.Payload) {
		t.Fatalf("body re-encodes differently\n got %s\nwant %s", out, m.Payload)
	}
	// Nested shapes decode too.
	switch b := body.(type) {
	case *HandshakeRequest:
		for _, a := range b.RequestedClientActions {
			if a.ActionType == ActionSessionType {
				var st SessionTypeRequest
				if err := DecodeJSON(a.ActionParameters, &st); err != nil || st.SessionType == "" {
					t.Fatalf("SessionType parameters: %v %+v", err, st)
				}
			}
		}
	case *HandshakeResponse:
		for _, a := range b.ProcessedClientActions {
			if a.ActionType == ActionKMSEncryption {
				var r KMSEncryptionResponse
				if err := DecodeJSON(a.ActionResult, &r); err != nil || len(r.KMSCipherTextKey) == 0 {
					t.Fatalf("KMSEncryption result: %v %+v", err, r)
				}
				again, _ := EncodeJSON(r)
				if !bytes.Equal(again, a.ActionResult) {
					t.Fatalf("KMS result re-encodes differently: %s vs %s", again, a.ActionResult)
				}
			}
		}
	}
}

func testTextVector(t *testing.T, v vector, frame []byte) {
	t.Helper()
	var in OpenDataChannelInput
	if err := DecodeJSON(frame, &in); err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	out, err := EncodeJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, frame) {
		t.Fatalf("text frame re-encodes differently\n got %s\nwant %s", out, frame)
	}
	var union OpenDataChannelFrame
	if err := DecodeJSON(frame, &union); err != nil || union.IsAgent() || union.TokenValue == "" {
		t.Fatalf("union decode: %v %+v", err, union)
	}
}
