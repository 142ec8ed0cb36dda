package cp

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/session"
)

// source is what an upload sends: one file, or a directory as a tar
// stream, with its size known before the first byte goes out.
type source struct {
	kind string // "file" or "dir"
	name string // base name
	path string // the local path
	size int64
	open func() (io.ReadCloser, error)
}

// scanLocal checks the local side of an upload and measures it. A
// directory's size comes from a tar written with zeros in place of the
// file contents (the size does not depend on them); the real tar follows
// when the node is ready. Should the tree change in between, the node's
// checksum (or its tar) tells.
func scanLocal(p string, recursive bool) (*source, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, localError(p, err, "")
	}
	src := &source{name: filepath.Base(filepath.Clean(p)), path: p}
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return nil, localError(p, err, "")
		}
		f.Close()
		src.kind, src.size = "file", fi.Size()
		src.open = func() (io.ReadCloser, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, localError(p, err, "")
			}
			return f, nil
		}
	case fi.IsDir():
		if !recursive {
			return nil, fmt.Errorf("%s: is a directory (use -r to copy a directory)", p)
		}
		cw := &countWriter{w: io.Discard}
		if err := writeTar(cw, p, src.name, true); err != nil {
			return nil, err
		}
		src.kind, src.size = "dir", cw.n
		src.open = func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeTar(pw, p, src.name, false)) }()
			return pr, nil
		}
	default:
		return nil, fmt.Errorf("%s: is not a regular file or directory", p)
	}
	return src, nil
}

// tarRecord is tar's blocking: GNU tar reads whole 10 KiB records, so the
// stream is padded to a multiple of it and the node's tar never waits for
// bytes that will not come.
const tarRecord = 10240

// writeTar writes dir as a tar whose entries start with name/, in
// lexical order, padded to whole records; with zeros, file contents are
// replaced by as many zero bytes (to measure the stream).
func writeTar(w io.Writer, dir, name string, zeros bool) error {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return localError(p, err, "")
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return localError(p, err, "")
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return localError(p, err, "")
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil // sockets, devices, FIFOs are not copied
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(name, rel))
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		h.Format = tar.FormatPAX
		h.AccessTime, h.ChangeTime = fi.ModTime(), fi.ModTime()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() && zeros {
			_, err := io.CopyN(tw, zeroReader{}, fi.Size())
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return localError(p, err, "")
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if rest := cw.n % tarRecord; rest != 0 {
		_, err = w.Write(make([]byte, tarRecord-rest))
	}
	return err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// nodeScript is a script running in an InteractiveCommands session (the
// only kind with a standard input), whose marker lines a goroutine reads.
type nodeScript struct {
	s     *session.Session
	rw    io.ReadWriter
	ready chan struct{}
	res   chan scriptResult // once the session's output ended
}

// scriptResult is what a script said before its session ended.
type scriptResult struct {
	sum, errLine string
	done         bool
}

func startScript(ctx context.Context, opts *CpOptions, clients session.Clients, id, script string) (*nodeScript, error) {
	req := session.CommandRequest(id, "sh -c "+q(script), true, "")
	req.Reason = opts.Reason
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return nil, err
	}
	ns := &nodeScript{s: s, rw: s.Bytes(), ready: make(chan struct{}), res: make(chan scriptResult, 1)}
	go ns.read()
	return ns, nil
}

// read follows the node's lines; the first that matters is READY or ERR.
func (ns *nodeScript) read() {
	var res scriptResult
	readyOnce := false
	br := bufio.NewReader(ns.rw)
	for {
		l, err := br.ReadString('\n')
		l = strings.TrimRight(l, "\r\n")
		switch {
		case l == markReady && !readyOnce:
			readyOnce = true
			close(ns.ready)
		case l == markDone:
			res.done = true
		case strings.HasPrefix(l, markSHA+" "):
			res.sum = strings.TrimPrefix(l, markSHA+" ")
		case strings.HasPrefix(l, markErr):
			res.errLine = l
		}
		if err != nil {
			ns.res <- res
			return
		}
	}
}

// check turns the end of a script that sent its data into an error: the
// node's ERR line first, then the sender's failure, then an early end
// (complete reports whether the script said all it had to).
func (ns *nodeScript) check(opts *CpOptions, id string, res scriptResult, sendErr error, complete bool) error {
	switch {
	case res.errLine != "":
		return remoteError(id, res.errLine)
	case sendErr != nil:
		return fmt.Errorf("sending %s: %w", opts.Local, sendErr)
	case !complete:
		if err := ns.s.Err(); err != nil {
			return fmt.Errorf("%s:%s: the copy ended early: %w", id, opts.Remote, err)
		}
		return fmt.Errorf("%s:%s: the copy ended early (the node did not confirm it)", id, opts.Remote)
	}
	return nil
}

func upload(ctx context.Context, opts *CpOptions, clients session.Clients, id string, src *source) error {
	if k := parallelism(opts.Parallel, src); k > 1 {
		return uploadParallel(ctx, opts, clients, id, src, k)
	}
	ns, err := startScript(ctx, opts, clients, id, uploadScript(opts.Remote, src.kind, src.name, src.size))
	if err != nil {
		return err
	}
	s, rw := ns.s, ns.rw
	defer s.Close()

	var (
		sendErr error
		sum     string
	)
	select {
	case <-ns.ready:
		r, err := src.open()
		if err != nil {
			s.Terminate(context.WithoutCancel(ctx))
			return err
		}
		prog := newProgress(opts.IO, src.name, src.size)
		h := sha256.New()
		buf := make([]byte, 256<<10)
		var n int64
		n, sendErr = io.CopyBuffer(io.MultiWriter(rw, h, prog), r, buf)
		r.Close()
		prog.finish()
		if sendErr == nil && n != src.size {
			sendErr = changedError(opts, n, src.size)
		}
		if sendErr == nil {
			sum = hex.EncodeToString(h.Sum(nil))
			_, sendErr = io.WriteString(rw, sum) // the node compares it with its own
		}
	case res := <-ns.res:
		ns.res <- res
	case <-ctx.Done():
		s.Terminate(context.WithoutCancel(ctx))
		return ctx.Err()
	}
	var res scriptResult
	select {
	case res = <-ns.res:
	case <-ctx.Done():
		s.Terminate(context.WithoutCancel(ctx))
		return ctx.Err()
	}
	if err := ns.check(opts, id, res, sendErr, res.sum != ""); err != nil {
		return err
	}
	if res.sum != sum {
		return fmt.Errorf("%s:%s: SHA-256 mismatch: sent %s, the node read %s", id, opts.Remote, sum, res.sum)
	}
	return nil
}

func changedError(opts *CpOptions, n, size int64) error {
	return fmt.Errorf("%s changed while it was copied (%d bytes, not %d)", opts.Local, n, size)
}
