package transport

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMaskCopy compares the vectorised masking with RFC 6455's definition,
// in place and into another buffer, for every length up to a few words,
// lengths around the repeated pattern's, and every start offset.
func TestMaskCopy(t *testing.T) {
	t.Parallel()
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	src := make([]byte, 3*maskPatternLen+7)
	for i := range src {
		src[i] = byte(i * 7)
	}
	var lengths []int
	for n := 0; n <= 67; n++ {
		lengths = append(lengths, n)
	}
	for _, base := range []int{maskPatternLen, 2 * maskPatternLen, 3 * maskPatternLen} {
		for d := -5; d <= 7; d++ {
			lengths = append(lengths, base+d)
		}
	}
	for _, n := range lengths {
		for pos := 0; pos < 8; pos++ {
			inPlace := append([]byte(nil), src[:n]...)
			maskCopy(inPlace, inPlace, key, pos)
			copied := make([]byte, n)
			maskCopy(copied, src[:n], key, pos)
			for i := range n {
				want := src[i] ^ key[(pos+i)%4]
				if inPlace[i] != want || copied[i] != want {
					t.Fatalf("n=%d pos=%d: byte %d = %#x in place, %#x copied, want %#x", n, pos, i, inPlace[i], copied[i], want)
				}
			}
		}
	}
}

func TestAppendHeaderLengths(t *testing.T) {
	t.Parallel()
	key := [4]byte{1, 2, 3, 4}
	for _, tt := range []struct {
		n    int
		mask *[4]byte
		want []byte
	}{
		{0, nil, []byte{0x82, 0}},
		{125, nil, []byte{0x82, 125}},
		{126, nil, []byte{0x82, 126, 0, 126}},
		{0xffff, nil, []byte{0x82, 126, 0xff, 0xff}},
		{0x10000, nil, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{5, &key, []byte{0x82, 0x85, 1, 2, 3, 4}},
		{300, &key, []byte{0x82, 0x80 | 126, 1, 44, 1, 2, 3, 4}},
	} {
		got := appendHeader(nil, opBinary, tt.n, tt.mask)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("appendHeader(%d, mask=%v) = %x, want %x", tt.n, tt.mask != nil, got, tt.want)
		}
		if l := headerLen(tt.n, tt.mask != nil); l != len(tt.want) {
			t.Errorf("headerLen(%d) = %d, want %d", tt.n, l, len(tt.want))
		}
	}
}

// TestWriteMessagesBothWays sends batches of messages of every size class
// — empty, tiny, 16-bit and 64-bit lengths, larger than the join buffer —
// each way through a real websocket, and reads them back in order through
// gorilla's parser.
func TestWriteMessagesBothWays(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var batch [][]byte
	for _, n := range []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 70000, 300 << 10, 3} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		batch = append(batch, b)
	}
	client, server := pair(t, ConnOptions{WriteBufferSize: 64 << 10})
	for _, dir := range []struct {
		name     string
		from, to *Conn
	}{{"client to server", client, server}, {"server to client", server, client}} {
		kept := make([][]byte, len(batch))
		for i, b := range batch {
			kept[i] = append([]byte(nil), b...)
		}
		errc := make(chan error, 1)
		go func() { errc <- dir.from.WriteMessages(batch) }()
		for i, want := range kept {
			got, err := dir.to.ReadMessage()
			if err != nil {
				t.Fatalf("%s: message %d: %v", dir.name, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: message %d (%d bytes) differs", dir.name, i, len(want))
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: WriteMessages: %v", dir.name, err)
		}
		for i := range batch {
			if !bytes.Equal(batch[i], kept[i]) {
				t.Fatalf("%s: WriteMessages changed the caller's buffer %d (masking in place?)", dir.name, i)
			}
		}
	}
}

// pair returns a connected client and server with opts on both ends.
func pair(t *testing.T, opts ConnOptions) (client, server *Conn) {
	t.Helper()
	accepted := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, ServerOptions{ConnOptions: opts})
		if err != nil {
			t.Errorf("Upgrade: %v", err)
			return
		}
		accepted <- c
	}))
	t.Cleanup(srv.Close)
	c, err := Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), DialOptions{ConnOptions: opts})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// BenchmarkMaskCopy is the client's per-byte cost of masking a 32 KiB
// message while copying it into the write buffer.
func BenchmarkMaskCopy(b *testing.B) {
	src := make([]byte, 32<<10)
	dst := make([]byte, len(src))
	key := [4]byte{1, 2, 3, 4}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		maskCopy(dst, src, key, 0)
	}
}
