package cp

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"
)

// loopbackMBps copies n bytes of path over a loopback TCP connection,
// hashing them on the receiving side as cp does: the machine's limit for
// this kind of copy, measured in the same run.
func loopbackMBps(b *testing.B, path string, n int64) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(sha256.New(), c)
		done <- err
	}()
	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	f, _ := os.Open(path)
	io.CopyN(c, f, n)
	f.Close()
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

// ptyMBps writes n bytes of path into a raw pty read by head -c into a
// file, as an upload's bytes reach the node (the real agent, too, writes a
// session's input into a pty): the ceiling of an upload on this machine,
// measured in the same run. It has no data channel, relay or checksum.
func ptyMBps(b *testing.B, path string, n int64) float64 {
	out := filepath.Join(b.TempDir(), "pty.out")
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("stty raw -echo -iexten && printf R && head -c %d > %s", n, q(out)))
	ptmx, err := pty.Start(cmd)
	if err != nil {
		b.Fatal(err)
	}
	defer ptmx.Close()
	ready := make([]byte, 1)
	if _, err := io.ReadFull(ptmx, ready); err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, ptmx) // nothing is echoed; drain whatever comes
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if _, err := io.CopyBuffer(ptmx, io.LimitReader(f, n), make([]byte, 32<<10)); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	mbps := float64(n) / time.Since(start).Seconds() / 1e6
	if fi, err := os.Stat(out); err != nil || fi.Size() != n {
		b.Fatalf("the pty delivered %v bytes of %d (%v)", fi.Size(), n, err)
	}
	return mbps
}

// BenchmarkCopy256MiB measures `ssmkit cp` of 256 MiB to and from a sandbox
// node (the emulated agent, on this machine) and prints MB/s and the ratio
// against loopback TCP with SHA-256 on the receiver and, for the upload,
// against a raw pty read by head -c (ptyMBps), both measured in the same
// run. Target (issue 10): at least 50 MB/s each way.
func BenchmarkCopy256MiB(b *testing.B) {
	const size = 256 << 20
	e := newCPEnv(b)
	local, remote := b.TempDir(), b.TempDir()
	src := filepath.Join(local, "big.bin")
	writeRandom(b, src, size)
	b.SetBytes(2 * size)
	var up, down, raw, tty float64
	for b.Loop() {
		raw += loopbackMBps(b, src, size)
		tty += ptyMBps(b, src, size)
		start := time.Now()
		if stderr, err := e.cp(b, src, "cp-1:"+remote+"/"); err != nil {
			b.Fatalf("upload: %v %s", err, stderr)
		}
		up += size / time.Since(start).Seconds() / 1e6
		start = time.Now()
		if stderr, err := e.cp(b, "cp-1:"+filepath.Join(remote, "big.bin"), filepath.Join(local, "back.bin")); err != nil {
			b.Fatalf("download: %v %s", err, stderr)
		}
		down += size / time.Since(start).Seconds() / 1e6
		os.Remove(filepath.Join(local, "back.bin"))
	}
	n := float64(b.N)
	b.ReportMetric(up/n, "up-MB/s")
	b.ReportMetric(down/n, "down-MB/s")
	b.ReportMetric(raw/n, "loopback-MB/s")
	b.ReportMetric(up/raw, "up/loopback")
	b.ReportMetric(down/raw, "down/loopback")
	b.ReportMetric(tty/n, "pty-MB/s")
	b.ReportMetric(up/tty, "up/pty")
	b.Logf("256 MiB: up %.1f MB/s, down %.1f MB/s, loopback TCP+SHA-256 %.1f MB/s (ratios %.3f / %.3f), raw pty + head -c %.1f MB/s (up/pty %.3f); target >= 50 MB/s",
		up/n, down/n, raw/n, up/raw, down/raw, tty/n, up/tty)
}
