package e2ebench

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

// The traffic server is the "remote port" of every forward: the emulated
// or official agent connects to it on the instance side. Each connection
// starts with a 9-byte request, op then size (uint64 big-endian):
//
//	'D' download: the server sends size bytes of the pattern;
//	'U' upload: the server reads size bytes and answers their SHA-256;
//	'E' echo: the server echoes everything until EOF (size unused).
//
// Raw loopback runs the same requests straight to the server, so the
// baseline and the forwarded path move and hash exactly the same bytes.
const (
	opDownload = 'D'
	opUpload   = 'U'
	opEcho     = 'E'
	reqLen     = 9
)

// patternLen is the length of the repeated random block every transfer
// is made of. It is deliberately not a power of two, so that no framing
// size along the path lines up with it.
const patternLen = 4<<20 + 4093

// pattern is the random block transfers repeat, and the digests of the
// sizes asked for so far.
type pattern struct {
	block []byte

	mu      sync.Mutex
	digests map[int64][32]byte
}

func newPattern(seed uint64) *pattern {
	b := make([]byte, patternLen)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return &pattern{block: b, digests: map[int64][32]byte{}}
}

// digest is the SHA-256 of the first size bytes of the repeated block.
func (p *pattern) digest(size int64) [32]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.digests[size]; ok {
		return d
	}
	h := sha256.New()
	_, _ = p.writeTo(h, size)
	var d [32]byte
	h.Sum(d[:0])
	p.digests[size] = d
	return d
}

// writeTo writes the first size bytes of the repeated block to w.
func (p *pattern) writeTo(w io.Writer, size int64) (int64, error) {
	var n int64
	for n < size {
		chunk := p.block[:min(int64(len(p.block)), size-n)]
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// server is the traffic server.
type server struct {
	ln  net.Listener
	pat *pattern
	wg  sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startServer(pat *pattern) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("traffic server: %w", err)
	}
	s := &server{ln: ln, pat: pat, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *server) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *server) serve(c net.Conn) {
	var req [reqLen]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	size := int64(binary.BigEndian.Uint64(req[1:]))
	switch req[0] {
	case opDownload:
		_, _ = s.pat.writeTo(c, size)
		// Half-close so the last bytes are not lost to a reset, then wait
		// for the client to hang up.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, c)
	case opUpload:
		h := sha256.New()
		n, _ := io.CopyBuffer(h, io.LimitReader(c, size), make([]byte, 256<<10))
		if n != size {
			return
		}
		_, _ = c.Write(h.Sum(nil))
		_, _ = io.Copy(io.Discard, c)
	case opEcho:
		_, _ = io.CopyBuffer(c, c, make([]byte, 64<<10))
	}
}

func request(op byte, size int64) []byte {
	b := make([]byte, reqLen)
	b[0] = op
	binary.BigEndian.PutUint64(b[1:], uint64(size))
	return b
}

// stallTimeout fails a transfer that moves nothing for this long. An
// official peer that stops must not hang the bench: once in this stop's
// runs the official plugin stopped reading its websocket mid-upload.
var stallTimeout = 2 * time.Minute

// stallConn is a connection whose every read and write must make progress
// within stallTimeout.
type stallConn struct{ net.Conn }

func (c stallConn) Read(p []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(stallTimeout))
	n, err := c.Conn.Read(p)
	return n, stalled(err)
}

func (c stallConn) Write(p []byte) (int, error) {
	_ = c.SetWriteDeadline(time.Now().Add(stallTimeout))
	n, err := c.Conn.Write(p)
	return n, stalled(err)
}

func stalled(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no progress for %s: %w", stallTimeout, err)
	}
	return err
}

// ErrCorrupt means the bytes that arrived are not the bytes sent.
var ErrCorrupt = errors.New("SHA-256 of the received bytes does not match what was sent")

// download connects to addr, asks for size bytes and checks their SHA-256.
// It returns the time from connect to the last byte.
func download(addr string, pat *pattern, size int64) (time.Duration, error) {
	start := time.Now()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	c := stallConn{nc}
	if _, err := c.Write(request(opDownload, size)); err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.LimitReader(c, size), make([]byte, 256<<10))
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("download: %d of %d bytes arrived: %w", n, size, io.ErrUnexpectedEOF)
	}
	want := pat.digest(size)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return 0, fmt.Errorf("download of %d bytes: %w", size, ErrCorrupt)
	}
	return el, nil
}

// upload connects to addr, sends size bytes and checks the SHA-256 the
// server computed. It returns the time from connect to the digest.
func upload(addr string, pat *pattern, size int64) (time.Duration, error) {
	start := time.Now()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	c := stallConn{nc}
	if _, err := c.Write(request(opUpload, size)); err != nil {
		return 0, err
	}
	if _, err := pat.writeTo(c, size); err != nil {
		return 0, err
	}
	var got [32]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return 0, fmt.Errorf("upload of %d bytes: no digest came back: %w", size, err)
	}
	el := time.Since(start)
	if got != pat.digest(size) {
		return 0, fmt.Errorf("upload of %d bytes: %w", size, ErrCorrupt)
	}
	return el, nil
}

// parallel runs n transfers of size/n bytes at once and returns the time
// until the last one finished.
func parallel(n int, size int64, one func(int64) (time.Duration, error)) (time.Duration, error) {
	each := size / int64(n)
	start := time.Now()
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := one(each)
			errs <- err
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// echo sends count messages of 32 bytes one at a time over one connection
// and returns each round trip, after warm-up round trips that are not
// counted.
func echo(addr string, count, warmup int) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// One deadline for the whole run (a deadline per round trip would add
	// to what is measured).
	_ = c.SetDeadline(time.Now().Add(stallTimeout + time.Duration(count+warmup)*time.Millisecond))
	if _, err := c.Write(request(opEcho, 0)); err != nil {
		return nil, err
	}
	msg := make([]byte, 32)
	got := make([]byte, 32)
	out := make([]time.Duration, 0, count)
	for i := range count + warmup {
		binary.BigEndian.PutUint64(msg, uint64(i))
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return nil, fmt.Errorf("echo %d: %w", i, err)
		}
		el := time.Since(start)
		if !bytes.Equal(got, msg) {
			return nil, fmt.Errorf("echo %d: %w", i, ErrCorrupt)
		}
		if i >= warmup {
			out = append(out, el)
		}
	}
	return out, nil
}

// percentile returns the p-th percentile (0–100) of ds by the
// nearest-rank method. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(p/100*float64(len(ds)) + 0.999999)
	rank = max(1, min(rank, len(ds)))
	return ds[rank-1]
}

// mbps is bytes per second in MB/s (10^6).
func mbps(size int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(size) / d.Seconds() / 1e6
}
