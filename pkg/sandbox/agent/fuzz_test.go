package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

func fuzzFrame(tb testing.TB, messageType string, seq int64, pt wire.PayloadType, payload []byte) []byte {
	m := wire.Message{MessageType: messageType, SchemaVersion: 1, CreatedDate: wire.UnixMilli(time.Unix(1700000000, 0)),
		SequenceNumber: seq, MessageID: uuid.MustParse("dd01e56b-ff48-483e-a508-b5f073f31b16"), PayloadType: pt, Payload: payload}
	b, err := wire.Encode(&m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzControlMessage feeds arbitrary control-channel frames to an agent:
// nothing the service sends may panic it or leave a session running.
func FuzzControlMessage(f *testing.F) {
	task, _ := json.Marshal(wire.AgentTaskPayload{SessionID: "s-1", DocumentContent: wire.SessionDocument{SchemaVersion: "1.0", SessionType: "Port",
		Properties: json.RawMessage(`{"portNumber":"22"}`)}})
	shell, _ := json.Marshal(wire.InteractiveShell{Content: string(task), SchemaVersion: 1})
	f.Add(fuzzFrame(f, wire.TypeInteractiveShell, 0, 0, shell))
	f.Add(fuzzFrame(f, wire.TypeChannelClosed, 0, 0, []byte(`{"SessionId":"s-1"}`)))
	f.Add(fuzzFrame(f, wire.TypeAgentTaskAcknowledge, 0, 0, []byte(`{"MessageId":"x"}`)))
	f.Add(fuzzFrame(f, wire.TypeInteractiveShell, 0, 0, []byte(`{"Content":"{\"SessionId\":\"a/b\"}"}`)))
	f.Add([]byte{0, 0, 0, 116})
	f.Fuzz(func(t *testing.T, frame []byte) {
		a := New(Config{InstanceID: "i-1", Endpoint: "http://127.0.0.1:1"})
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // sessions fail at once instead of dialling
		a.handleControl(ctx, frame)
		a.wg.Wait()
		if got := a.Sessions(); len(got) != 0 {
			t.Fatalf("sessions left: %v", got)
		}
		_ = a.Close()
	})
}

// FuzzInputLedger checks that the ledger never panics and never places a
// cut beyond the bytes it has counted.
func FuzzInputLedger(f *testing.F) {
	f.Add([]byte("ab"), uint8(3), int64(0))
	f.Add([]byte{0, 0, 0, 1}, uint8(10), int64(1))
	f.Fuzz(func(t *testing.T, payload []byte, pt uint8, seq int64) {
		l := newInputLedger()
		l.observe(payload) // not a frame
		if len(payload) > 0 {
			l.observe(fuzzFrame(t, wire.TypeInputStreamData, seq, wire.PayloadType(pt), payload))
			l.observe(fuzzFrame(t, wire.TypeInputStreamData, 0, wire.PayloadFlag, wire.EncodeFlag(wire.FlagDisconnectToPort)))
		}
		for {
			at, ok := l.nextCut()
			if !ok {
				break
			}
			if at < 0 || at > l.bytes {
				t.Fatalf("cut at %d beyond %d bytes", at, l.bytes)
			}
		}
	})
}
