package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

func sampleMessage() Message {
	return Message{
		MessageType:    TypeOutputStreamData,
		SchemaVersion:  SchemaVersion,
		CreatedDate:    1700000000000,
		SequenceNumber: 42,
		Flags:          0,
		MessageID:      uuid.MustParse("dd01e56b-ff48-483e-a508-b5f073f31b16"),
		PayloadType:    PayloadOutput,
		Payload:        []byte("hello, world"),
	}
}

func encodeSample(t *testing.T) []byte {
	t.Helper()
	m := sampleMessage()
	b, err := Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	m := sampleMessage()
	b, err := Encode(&m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != FrameHeaderSize+len(m.Payload) {
		t.Fatalf("length %d", len(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageID != m.MessageID || got.SequenceNumber != 42 || string(got.Payload) != "hello, world" ||
		got.PayloadDigest != sha256.Sum256(m.Payload) || got.PayloadLength != uint32(len(m.Payload)) {
		t.Fatalf("round trip: %+v", got)
	}
	// Negative sequence numbers and large flags keep their bit patterns.
	m.SequenceNumber = -1
	m.Flags = 1<<64 - 1
	b, _ = Encode(&m)
	got, err = Decode(b)
	if err != nil || got.SequenceNumber != -1 || got.Flags != 1<<64-1 {
		t.Fatalf("bit patterns: %v %+v", err, got)
	}
}

func TestAppendEncodeReusesBuffer(t *testing.T) {
	m := sampleMessage()
	buf := make([]byte, 0, 256)
	out, err := AppendEncode(buf[:0], &m)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &buf[:1][0] {
		t.Fatal("AppendEncode did not use the given buffer")
	}
	prefix := []byte("xyz")
	out, err = AppendEncode(prefix, &m)
	if err != nil || !bytes.HasPrefix(out, prefix) {
		t.Fatalf("append after prefix: %v", err)
	}
	if _, err := Decode(out[3:]); err != nil {
		t.Fatal(err)
	}
}

func TestPutHeaderInPlace(t *testing.T) {
	m := sampleMessage()
	want, _ := Encode(&m)
	frame := make([]byte, FrameHeaderSize+len(m.Payload))
	copy(frame[FrameHeaderSize:], m.Payload)
	m2 := sampleMessage()
	m2.Payload = frame[FrameHeaderSize:]
	if err := PutHeader(frame, &m2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, want) {
		t.Fatal("PutHeader frame differs from Encode")
	}
	if err := PutHeader(frame[:10], &m2); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("short frame: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := encodeSample(t)
	mutate := func(f func(b []byte) []byte) []byte {
		c := append([]byte(nil), good...)
		return f(c)
	}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrShortFrame},
		{"short", good[:119], ErrShortFrame},
		{"header length zero", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 0); return b }), ErrHeaderLength},
		{"header length past end", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 1<<31); return b }), ErrHeaderLength},
		{"header length max uint32", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 1<<32-1); return b }), ErrHeaderLength},
		{"header length too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 50); return b }), ErrHeaderLength},
		{"empty message type", mutate(func(b []byte) []byte { copy(b[4:36], bytes.Repeat([]byte(" "), 32)); return b }), ErrEmptyMessageType},
		{"unknown message type", mutate(func(b []byte) []byte { copy(b[4:36], []byte("bogus_type                      ")); return b }), ErrUnknownMessageType},
		{"binary message type", mutate(func(b []byte) []byte { b[5] = 0x01; return b }), ErrInvalidMessageType},
		{"zero created date", mutate(func(b []byte) []byte { binary.BigEndian.PutUint64(b[40:], 0); return b }), ErrZeroCreatedDate},
		{"digest mismatch", mutate(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), ErrDigestMismatch},
		{"payload length lies", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[116:], 1<<31); return b }), ErrPayloadLength},
		{"oversized", make([]byte, MaxFrameSize+1), ErrFrameTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.frame)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FrameError", err)
			}
		})
	}
}

func TestDecodeAcceptsNULPaddingAndEmptyPayload(t *testing.T) {
	b := encodeSample(t)
	copy(b[4:36], append([]byte(TypeOutputStreamData), make([]byte, 32-len(TypeOutputStreamData))...))
	if m, err := Decode(b); err != nil || m.MessageType != TypeOutputStreamData {
		t.Fatalf("NUL padding: %v", err)
	}
	// A 120-byte frame (empty payload) is accepted on receive even though
	// it is never sent (§2.2, quirk 7).
	empty := b[:FrameHeaderSize]
	binary.BigEndian.PutUint32(empty[116:], 0)
	if m, err := Decode(empty); err != nil || len(m.Payload) != 0 {
		t.Fatalf("empty payload: %v", err)
	}
}

func TestPublicationSkipsValidation(t *testing.T) {
	b := encodeSample(t)
	copy(b[4:36], []byte("pause_publication               "))
	binary.BigEndian.PutUint64(b[40:], 0)
	b[len(b)-1] ^= 0xff
	m, err := Decode(b)
	if err != nil || m.MessageType != TypePausePublication {
		t.Fatalf("pause_publication: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	m := sampleMessage()
	m.Payload = nil
	if _, err := Encode(&m); !errors.Is(err, ErrEmptyPayload) {
		t.Fatalf("empty payload: %v", err)
	}
	m = sampleMessage()
	m.MessageType = "this_message_type_is_far_too_long_for_the_field"
	if _, err := Encode(&m); !errors.Is(err, ErrMessageTypeTooLong) {
		t.Fatalf("long type: %v", err)
	}
	m = sampleMessage()
	m.MessageType = ""
	if _, err := Encode(&m); !errors.Is(err, ErrEmptyMessageType) {
		t.Fatalf("empty type: %v", err)
	}
	m = sampleMessage()
	m.Payload = make([]byte, MaxFrameSize)
	if _, err := Encode(&m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge payload: %v", err)
	}
}

func TestDecodeHeader(t *testing.T) {
	b := encodeSample(t)
	mt, seq, err := DecodeHeader(b)
	if err != nil || mt != TypeOutputStreamData || seq != 42 {
		t.Fatalf("DecodeHeader: %q %d %v", mt, seq, err)
	}
	if _, _, err := DecodeHeader(b[:10]); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("short: %v", err)
	}
}

func TestGarbageNeverPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	good := encodeSample(t)
	for i := 0; i < 20000; i++ {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, r.IntN(300))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		} else {
			b = append([]byte(nil), good...)
			for k := 0; k < 1+r.IntN(4); k++ {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
			b = b[:r.IntN(len(b)+1)]
		}
		_, _ = Decode(b)
		_, _, _ = DecodeHeader(b)
	}
}

func TestFlagAndExitCode(t *testing.T) {
	for _, f := range []Flag{FlagDisconnectToPort, FlagTerminateSession, FlagConnectToPortError} {
		got, err := DecodeFlag(EncodeFlag(f))
		if err != nil || got != f {
			t.Fatalf("flag %v: %v %v", f, got, err)
		}
	}
	if _, err := DecodeFlag([]byte{1, 2, 3}); !errors.Is(err, ErrInvalidFlagPayload) {
		t.Fatalf("short flag: %v", err)
	}
	for _, c := range []int{0, 1, 127, 255, -1} {
		got, err := DecodeExitCode(EncodeExitCode(c))
		if err != nil || got != c {
			t.Fatalf("exit code %d: %d %v", c, got, err)
		}
	}
	if string(EncodeExitCode(3)) != "EXIT_CODE: 3" {
		t.Fatal("exit code text")
	}
	for _, bad := range []string{"", "EXIT_CODE:", "EXIT_CODE: x", "exit 3", "EXIT_CODE: 99999999999999"} {
		if _, err := DecodeExitCode([]byte(bad)); !errors.Is(err, ErrInvalidExitCodeBody) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestJSONBodyErrors(t *testing.T) {
	for _, bad := range []string{"", "not json", "{", `{"cols":"eighty"}`, `[1,2]`} {
		var s SizeData
		if err := DecodeJSON([]byte(bad), &s); !errors.Is(err, ErrInvalidBody) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	// Keys match case-insensitively, as upstream relies on.
	var a Acknowledge
	if err := DecodeJSON([]byte(`{"acknowledgedmessagesequencenumber":7}`), &a); err != nil || a.AcknowledgedMessageSequenceNumber != 7 {
		t.Fatalf("case-insensitive: %v %+v", err, a)
	}
	var in SessionInputs
	if err := DecodeJSON([]byte(`{"runAsEnabled":"true","s3EncryptionEnabled":false,"cloudWatchStreamingEnabled":""}`), &in); err != nil || !bool(in.RunAsEnabled) {
		t.Fatalf("bool strings: %v %+v", err, in)
	}
	if err := DecodeJSON([]byte(`{"runAsEnabled":"maybe"}`), &in); !errors.Is(err, ErrInvalidBody) {
		t.Fatalf("bad bool: %v", err)
	}
}

func TestHandshakeDurationIsNanoseconds(t *testing.T) {
	b, _ := EncodeJSON(HandshakeComplete{HandshakeTimeToComplete: 1500 * time.Millisecond})
	if string(b) != `{"HandshakeTimeToComplete":1500000000,"CustomerMessage":""}` {
		t.Fatalf("got %s", b)
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{3, 1024, 32 << 10} {
		m := sampleMessage()
		m.Payload = bytes.Repeat([]byte("x"), size)
		buf := make([]byte, 0, FrameHeaderSize+size)
		b.Run(byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				var err error
				buf, err = AppendEncode(buf[:0], &m)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{3, 1024, 32 << 10} {
		m := sampleMessage()
		m.Payload = bytes.Repeat([]byte("x"), size)
		frame, _ := Encode(&m)
		b.Run(byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if _, err := Decode(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	default:
		return itoa(n) + "B"
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestDecodeUnverified(t *testing.T) {
	b := encodeSample(t)
	b[len(b)-1] ^= 0xff
	m, err := DecodeUnverified(b)
	if err != nil {
		t.Fatalf("DecodeUnverified checked the digest: %v", err)
	}
	if err := m.VerifyDigest(); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("VerifyDigest: %v", err)
	}
	if _, err := DecodeUnverified(b[:50]); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("short: %v", err)
	}
}
