package datachannel

import (
	"crypto/rand"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport/transporttest"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// rawWebsocketCopy sends size bytes as binary messages of chunk bytes over
// a fresh loopback websocket and returns how long it took to receive them.
func rawWebsocketCopy(tb testing.TB, src []byte, chunk int) time.Duration {
	c, s := transporttest.WebsocketPair(tb)
	defer c.Close()
	defer s.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		for off := 0; off < len(src); off += chunk {
			if err := c.WriteMessage(src[off:min(off+chunk, len(src))]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	got := 0
	for got < len(src) {
		m, err := s.ReadMessage()
		if err != nil {
			tb.Fatal(err)
		}
		got += len(m)
	}
	el := time.Since(start)
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return el
}

// channelCopy sends src from the agent to the client over a fresh loopback
// websocket data channel and returns how long the client took to read it.
func channelCopy(tb testing.TB, src []byte, kms bool) time.Duration {
	client, agent := newPair(tb, pairOptions{link: linkWebsocket, kms: kms})
	defer client.Close()
	defer agent.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := agent.Write(src)
		done <- err
	}()
	got := 0
	for got < len(src) {
		n, err := client.Read(buf)
		if err != nil {
			tb.Fatal(err)
		}
		got += n
	}
	el := time.Since(start)
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return el
}

// BenchmarkThroughputVsRaw moves the same bytes over a raw loopback
// websocket (the baseline, in messages of the channel's payload size) and
// over the data channel, in the same run, and reports both rates and their
// ratio. Target: ratio ≥ 0.40.
func BenchmarkThroughputVsRaw(b *testing.B) {
	const size = 64 << 20
	src := make([]byte, size)
	_, _ = rand.Read(src)
	for _, kms := range []bool{false, true} {
		name := "plain"
		if kms {
			name = "kms"
		}
		b.Run(name, func(b *testing.B) {
			var raw, ch time.Duration
			for i := 0; i < b.N; i++ {
				raw += rawWebsocketCopy(b, src, DefaultMaxPayloadSize)
				ch += channelCopy(b, src, kms)
			}
			rawMBs := float64(size*b.N) / raw.Seconds() / 1e6
			chMBs := float64(size*b.N) / ch.Seconds() / 1e6
			b.ReportMetric(rawMBs, "raw-MB/s")
			b.ReportMetric(chMBs, "channel-MB/s")
			b.ReportMetric(chMBs/rawMBs, "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// peakHeap samples the heap while f runs and returns the largest
// HeapInuse seen, garbage the collector has not reached yet included.
func peakHeap(f func()) uint64 {
	inuse, _ := peakHeaps(f)
	return inuse
}

// peakHeaps samples the heap while f runs and returns the largest HeapInuse
// and the largest live heap (what the last collection found reachable,
// runtime/metrics /gc/heap/live:bytes) seen. The live heap is what the
// channel's buffers hold; HeapInuse adds garbage, by how far the collector
// lags, which grows on a loaded machine.
func peakHeaps(f func()) (inuse, live uint64) {
	runtime.GC()
	var peakInuse, peakLive atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peakInuse.Store(max(peakInuse.Load(), ms.HeapInuse))
			metrics.Read(sample)
			peakLive.Store(max(peakLive.Load(), sample[0].Value.Uint64()))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	runtime.GC() // the live heap at the end of f
	close(stop)
	wg.Wait()
	return peakInuse.Load(), peakLive.Load()
}

// streamThrough sends total bytes of a repeating random block from the
// agent to the client without holding them in memory.
func streamThrough(tb testing.TB, client, agent *Channel, total int64) {
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	done := make(chan error, 1)
	go func() {
		for sent := int64(0); sent < total; sent += int64(len(block)) {
			if _, err := agent.Write(block); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	n, err := io.CopyBuffer(io.Discard, io.LimitReader(client, total), make([]byte, 256<<10))
	if err != nil || n != total {
		tb.Fatalf("received %d of %d bytes: %v", n, total, err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkMemory1GiB streams 1 GiB through a websocket data channel and
// reports the peak heap: it stays flat because every buffer is bounded.
func BenchmarkMemory1GiB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		client, agent := newPair(b, pairOptions{link: linkWebsocket})
		start := time.Now()
		peak := peakHeap(func() { streamThrough(b, client, agent, 1<<30) })
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(1<<30)/time.Since(start).Seconds()/1e6, "MB/s")
		client.Close()
		agent.Close()
	}
}

// TestMemoryBounded: a reader slower than the network does not make the
// heap grow with the amount transferred (the buffers are bounded).
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long data test")
	}
	client, agent := newPair(t, pairOptions{link: linkPipe})
	inuse, live := peakHeaps(func() { streamThrough(t, client, agent, 256<<20) })
	t.Logf("peak live heap %.1f MiB (in use with garbage %.1f MiB) for 256 MiB transferred", float64(live)/(1<<20), float64(inuse)/(1<<20))
	// Send window (4 MiB) + the receive buffer and a window (5 MiB) + reorder
	// (4 MiB) + the pipe's queue, the writer's 1 MiB block and slack. The
	// live heap, not HeapInuse: how much garbage is waiting for the
	// collector depends on the machine's load, not on the buffers.
	if live > 24<<20 {
		t.Fatalf("peak live heap %d MiB: buffers are not bounded", live>>20)
	}
}

func BenchmarkAckEncode(b *testing.B) {
	m := wire.Message{MessageType: wire.TypeOutputStreamData, SequenceNumber: 123456}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = appendAck(buf[:0], m.MessageType, m.MessageID, m.SequenceNumber)
	}
}
