package mgs

import (
	"testing"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// BenchmarkRelay measures client → agent relaying of 1 KiB stream frames
// (the upstream chunk size, §10.2) over loopback websockets, with the
// agent → client direction idle.
func BenchmarkRelay(b *testing.B) {
	e := newEnv(b, Options{Logf: func(string, ...any) {}})
	_, _, agent, _, _, cl := pair(b, e, nil)
	f := frame(b, wire.TypeInputStreamData, 0, wire.PayloadOutput, make([]byte, 1024))
	b.SetBytes(int64(len(f)))
	b.ResetTimer()
	go func() {
		for range b.N {
			if cl.WriteMessage(f) != nil {
				return
			}
		}
	}()
	for range b.N {
		if r := <-agent.ch; r.err != nil {
			b.Fatal(r.err)
		}
	}
}
