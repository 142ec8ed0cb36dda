package cp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// A parallel upload sends a file over several InteractiveCommands sessions
// at once, each writing its own byte range of one temporary file on the
// node (partScript), then one NonInteractiveCommands session compares the
// SHA-256 of the whole file with the sender's and renames it into place
// (finishScript). An upload's bytes reach the node through a pty, on the
// real agent too, and a pty moves about 4 KiB per wake-up of its reader
// (the kernel's n_tty): the sessions' ptys work side by side.
const (
	// maxParallel bounds --parallel.
	maxParallel = 16
	// defaultMaxParallel and parallelStep choose the default: one
	// session per parallelStep of the file, at most defaultMaxParallel.
	defaultMaxParallel = 4
	parallelStep       = 8 << 20
)

// partReady, when set (tests), is called when a part's script is ready
// for its bytes, before they are sent.
var partReady func(part int, s *session.Session)

// part is a byte range of a parallel upload.
type part struct{ off, n int64 }

// parallelism is how many sessions upload src: --parallel (flag) when set,
// else one per parallelStep bytes up to defaultMaxParallel; never more
// than there are parts, and 1 for directories (a tar stream).
func parallelism(flag int, src *source) int {
	if src.kind != "file" {
		return 1
	}
	k := flag
	if k == 0 {
		k = int(min(defaultMaxParallel, src.size/parallelStep))
	}
	return max(1, min(k, len(splitParts(src.size, k))))
}

// splitParts cuts size bytes into at most k ranges of whole partBlocks
// (the last may be shorter).
func splitParts(size int64, k int) []part {
	if k < 1 || size <= 0 {
		return nil
	}
	chunk := (size + int64(k) - 1) / int64(k)
	chunk = (chunk + partBlock - 1) / partBlock * partBlock
	var parts []part
	for off := int64(0); off < size; off += chunk {
		parts = append(parts, part{off: off, n: min(chunk, size-off)})
	}
	return parts
}

func uploadParallel(ctx context.Context, opts *CpOptions, clients session.Clients, id string, src *source, k int) error {
	f, err := os.Open(src.path)
	if err != nil {
		return localError(src.path, err, "")
	}
	defer f.Close()
	token := newToken()
	prog := newProgress(opts.IO, src.name, src.size)
	g, gctx := errgroup.WithContext(ctx)
	var sum string
	g.Go(func() error {
		h := sha256.New()
		n, err := io.Copy(h, io.NewSectionReader(f, 0, src.size+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", opts.Local, err)
		}
		if n != src.size {
			return changedError(opts, n, src.size)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	// Sessions start one after another (each once the previous one is ready or has failed),
	// then move their bytes side by side: the official agent refuses a burst of session starts
	// (ProcessorBufferFull in its log), which failed a 4-part upload to a freshly started agent.
	prev := make(chan struct{})
	close(prev)
	for i, p := range splitParts(src.size, k) {
		script := partScript(opts.Remote, src.name, token, p.off, p.n)
		r := io.NewSectionReader(f, p.off, p.n)
		after, started := prev, make(chan struct{})
		prev = started
		g.Go(func() error { return sendPart(gctx, opts, clients, id, i, script, r, p.n, prog, after, started) })
	}
	err = g.Wait()
	prog.finish()
	if err != nil {
		// Every part's session has ended: remove what they wrote, also
		// when ctx ended (Ctrl-C).
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := finishRemote(cctx, opts, clients, id, finishScript(opts.Remote, src.name, token, ""), ""); cerr != nil {
			return fmt.Errorf("%w (and removing the partial upload, *.ssmkit-%s beside %s, failed: %v)", err, token, opts.Remote, cerr)
		}
		return err
	}
	return finishRemote(ctx, opts, clients, id, finishScript(opts.Remote, src.name, token, sum), sum)
}

// sendPart sends one range r of n bytes through its own session. Its
// session ends with ctx (another part failed); it returns once the
// session's output ended, so that cleaning up comes after it.
func sendPart(ctx context.Context, opts *CpOptions, clients session.Clients, id string, i int, script string, r io.Reader, n int64, prog *progress,
	after <-chan struct{}, started chan<- struct{}) error {
	var once sync.Once
	startedNow := func() { once.Do(func() { close(started) }) }
	defer startedNow()
	select {
	case <-after:
	case <-ctx.Done():
		return ctx.Err()
	}
	ns, err := startScript(ctx, opts, clients, id, script)
	if err != nil {
		return err
	}
	defer ns.s.Close()
	stop := context.AfterFunc(ctx, func() { ns.s.Terminate(context.WithoutCancel(ctx)) })
	defer stop()
	var sendErr error
	select {
	case <-ns.ready:
		startedNow() // the next part may start its session (any other way out returns: the defer)
		if partReady != nil {
			partReady(i, ns.s)
		}
		var sent int64
		sent, sendErr = io.CopyBuffer(io.MultiWriter(ns.rw, prog), r, make([]byte, 256<<10))
		if sendErr == nil && sent != n {
			sendErr = changedError(opts, sent, n)
		}
	case res := <-ns.res:
		ns.res <- res
	case <-ctx.Done():
	}
	var res scriptResult
	select {
	case res = <-ns.res:
	case <-ctx.Done():
		// Terminated (AfterFunc): wait a while for the end of its output.
		select {
		case <-ns.res:
		case <-time.After(30 * time.Second):
		}
		return ctx.Err()
	}
	if ctx.Err() != nil && !res.done {
		return ctx.Err()
	}
	return ns.check(opts, id, res, sendErr, res.done)
}

// finishRemote runs finishScript through NonInteractiveCommands, whose
// separate standard error carries the node's checksum and errors.
func finishRemote(ctx context.Context, opts *CpOptions, clients session.Clients, id, script, want string) error {
	req := session.CommandRequest(id, "sh -c "+q(script), false, ssmdoc.NonInteractiveCommand)
	req.Reason = opts.Reason
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()
	var stderr lineBuffer
	code, err := session.RunCommand(ctx, s, session.CommandIO{Stdout: io.Discard, Stderr: &stderr})
	if err != nil {
		return err
	}
	var got string
	for _, l := range stderr.lines() {
		if strings.HasPrefix(l, markErr) {
			return remoteError(id, l)
		}
		if v, ok := strings.CutPrefix(l, markSHA+" "); ok {
			got = v
		}
	}
	switch {
	case code != 0 && code != session.NoExitCode:
		return fmt.Errorf("%s:%s: finishing the upload failed (status %d)", id, opts.Remote, code)
	case want != "" && got != want:
		return fmt.Errorf("%s:%s: SHA-256 mismatch: sent %s, the node read %s", id, opts.Remote, want, got)
	}
	return nil
}

// newToken names one upload's work directory on the node.
func newToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
