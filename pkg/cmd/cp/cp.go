// Package cp implements `ssmkit cp`: copy files and directories to and
// from a managed node over Session Manager, streaming, with the SHA-256 of
// what arrived checked at the other end.
//
// Downloads run a script through AWS-StartNonInteractiveCommand with
// separate output streams: the data on stdout, messages and the node's
// SHA-256 on stderr. Uploads need a standard input, which
// NonInteractiveCommands does not have (SESSION-PROTOCOL.md §7.2), so they
// run through AWS-StartInteractiveCommand with the node's terminal in raw
// mode, sending exactly the announced number of bytes.
package cp

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// CpOptions are the inputs of `ssmkit cp`.
type CpOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is the node of the remote side, and --pick-one.
	Target cmdutil.Target
	// Upload is true for local → node.
	Upload bool
	// Local and Remote are the two paths.
	Local, Remote string
	// Recursive is -r: copy directories.
	Recursive bool
	// Reason is --reason.
	Reason string
	// Parallel is --parallel: how many sessions upload a file at once
	// (0: chosen from its size).
	Parallel int
}

// NewCmdCp returns the `cp` command. runF replaces the run function in
// tests.
func NewCmdCp(f *cmdutil.Factory, runF func(*CpOptions) error) *cobra.Command {
	opts := &CpOptions{IO: f.IOStreams, Clients: f.SessionClients}
	cmd := &cobra.Command{
		Use:   "cp [-r] <source> <destination>",
		Short: "Copy files and directories to or from a managed node",
		Long: "Copy a file or, with -r, a directory between this machine and a managed node; one side\n" +
			"is <target>:<path>. The copy streams (memory stays small whatever the size), shows\n" +
			"progress on a terminal, and is checked: the node computes the SHA-256 of what it read or\n" +
			"received (sha256sum) and ssmkit compares it with its own. A file is written beside its\n" +
			"destination and renamed into place once complete.\n\n" +
			"A large file is uploaded over several sessions at once (--parallel), each writing its\n" +
			"part with dd; the SHA-256 of the whole file is checked before the rename, and if any\n" +
			"session fails the partial file is removed.\n\n" +
			"Downloads use AWS-StartNonInteractiveCommand; uploads use AWS-StartInteractiveCommand\n" +
			"(a raw terminal is the only way to send bytes to a command). The node needs a POSIX\n" +
			"shell with sha256sum, head, tee, mkfifo, stty, dd, and tar for directories.\n\n" +
			cmdutil.TargetHelp,
		Example: "  ssmkit cp backup.tar.gz web-1:/tmp/\n" +
			"  ssmkit cp i-0123456789abcdef0:/var/log/syslog ./syslog\n" +
			"  ssmkit cp -r ./site web-1:/srv/site",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcTarget, srcPath, srcRemote := splitRemote(args[0])
			dstTarget, dstPath, dstRemote := splitRemote(args[1])
			switch {
			case srcRemote && dstRemote:
				return cmdutil.FlagErrorf("both sides are on nodes: one of source and destination must be a local path")
			case !srcRemote && !dstRemote:
				return cmdutil.FlagErrorf("neither side names a node: write the remote side as <target>:<path>")
			case srcRemote:
				opts.Target.Arg, opts.Remote, opts.Local = srcTarget, srcPath, args[1]
			default:
				opts.Target.Arg, opts.Remote, opts.Local, opts.Upload = dstTarget, dstPath, args[0], true
			}
			if opts.Target.Arg == "" || opts.Remote == "" || opts.Local == "" {
				return cmdutil.FlagErrorf("empty target or path in %q %q", args[0], args[1])
			}
			if opts.Parallel < 0 || opts.Parallel > maxParallel {
				return cmdutil.FlagErrorf("--parallel must be between 1 and %d (0 or unset: chosen from the file's size)", maxParallel)
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return cpRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "Copy directories")
	cmd.Flags().IntVar(&opts.Parallel, "parallel", 0, fmt.Sprintf("Sessions that upload a file at once, each a part of it (default: 1 below %d MiB, up to %d)", parallelStep>>20, defaultMaxParallel))
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

// splitRemote splits "target:path". Local paths (absolute, ./ or ../,
// or without a colon) are not remote; an IPv6 target goes in brackets.
func splitRemote(s string) (target, p string, remote bool) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
		return "", s, false
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			return s[1:i], s[i+2:], true
		}
	}
	t, p, ok := strings.Cut(s, ":")
	return t, p, ok
}

func cpRun(ctx context.Context, opts *CpOptions) error {
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	if opts.Upload {
		src, err := scanLocal(opts.Local, opts.Recursive)
		if err != nil {
			return err
		}
		id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
		if err != nil {
			return err
		}
		return upload(ctx, opts, clients, id, src)
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	return download(ctx, opts, clients, id)
}

// remoteError turns a script's "SSMKIT-ERR kind path" line into one line.
func remoteError(target, line string) error {
	f := strings.SplitN(strings.TrimSpace(strings.TrimPrefix(line, markErr)), " ", 2)
	what := errKinds[f[0]]
	if what == "" {
		what = f[0]
	}
	where := ""
	if len(f) > 1 {
		where = f[1] + ": "
	}
	return fmt.Errorf("%s:%s%s", target, where, what)
}

// ---- download ----

func download(ctx context.Context, opts *CpOptions, clients session.Clients, id string) error {
	command := "sh -c " + q(downloadScript(opts.Remote, opts.Recursive))
	req := session.CommandRequest(id, command, false, ssmdoc.NonInteractiveCommand)
	req.Reason = opts.Reason
	s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()

	pr, pw := io.Pipe()
	recv := &receiver{opts: opts, remote: id + ":" + opts.Remote}
	done := make(chan error, 1)
	go func() {
		err := recv.receive(pr)
		_, _ = io.Copy(io.Discard, pr) // never block the session on an early failure
		done <- err
	}()
	var stderr lineBuffer
	code, runErr := session.RunCommand(ctx, s, session.CommandIO{Stdout: pw, Stderr: &stderr})
	pw.Close()
	recvErr := <-done
	recv.progress.finish()
	// Whatever fails below leaves nothing behind.
	committed := false
	defer func() {
		if !committed {
			recv.abort()
		}
	}()
	for _, l := range stderr.lines() {
		if strings.HasPrefix(l, markErr) {
			recv.abort()
			return remoteError(id, l)
		}
	}
	if runErr != nil {
		recv.abort()
		return runErr
	}
	if recvErr != nil {
		recv.abort()
		return recvErr
	}
	var sum string
	var other []string
	for _, l := range stderr.lines() {
		switch v, ok := strings.CutPrefix(l, markSHA+" "); {
		case ok:
			sum = v
		case isSessionNotice(l):
			// How the session ended ("timed out" after a dropped
			// connection, the service's reason): the data and its
			// checksum decide.
			logf(opts, "%s", l)
		case strings.TrimSpace(l) != "":
			other = append(other, l)
		}
	}
	if code != 0 && code != session.NoExitCode || sum == "" {
		recv.abort()
		msg := strings.Join(other, "; ")
		if msg == "" {
			msg = fmt.Sprintf("the copy ended early (status %d)", code)
		}
		return fmt.Errorf("%s:%s: %s", id, opts.Remote, msg)
	}
	if got := hex.EncodeToString(recv.hash.Sum(nil)); got != sum {
		recv.abort()
		return fmt.Errorf("%s:%s: SHA-256 mismatch: the node read %s, %s arrived; the copy was discarded", id, opts.Remote, sum, got)
	}
	if len(other) > 0 {
		return fmt.Errorf("%s:%s: %s", id, opts.Remote, strings.Join(other, "; "))
	}
	committed = true
	return recv.commit()
}

// isSessionNotice reports whether l is the session layer's line about how
// the session ended, not output of the node.
func isSessionNotice(l string) bool {
	return strings.HasPrefix(l, "Session: ") || strings.HasPrefix(l, "SessionId: ") || strings.HasPrefix(l, "Exiting session")
}

func logf(opts *CpOptions, format string, args ...any) {
	if opts.Logf != nil {
		opts.Logf(format, args...)
	}
}

// receiver writes what a download brings: a file beside its destination,
// renamed into place by commit, or a directory extracted as it arrives.
type receiver struct {
	opts     *CpOptions
	remote   string
	hash     hashWriter
	progress *progress
	tmp      *os.File
	final    string
	created  string // a directory this copy created (removed on abort)
}

type hashWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (h *hashWriter) Write(p []byte) (int, error) { return h.h.Write(p) }
func (h *hashWriter) Sum(b []byte) []byte         { return h.h.Sum(b) }

func (r *receiver) receive(in io.Reader) error {
	r.hash = hashWriter{sha256.New()}
	br := bufio.NewReaderSize(in, 64<<10)
	header, err := br.ReadString('\n')
	if err != nil {
		return nil // no data: the script failed before its header (see stderr)
	}
	f := strings.Fields(header)
	if len(f) != 3 || f[0] != markHeader {
		return fmt.Errorf("%s: unexpected output from the node: %q", r.remote, strings.TrimSpace(header))
	}
	size, _ := strconv.ParseInt(f[2], 10, 64)
	r.progress = newProgress(r.opts.IO, path.Base(r.opts.Remote), size)
	data := io.TeeReader(br, io.MultiWriter(&r.hash, r.progress))
	if f[1] == "dir" {
		if err := r.extract(data); err != nil {
			return err
		}
		// The archive's end marker comes before tar's record padding:
		// the checksum covers every byte the node sent.
		_, err := io.Copy(io.Discard, data)
		return err
	}
	return r.file(data)
}

func (r *receiver) file(data io.Reader) error {
	dst := r.opts.Local
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		dst = filepath.Join(dst, path.Base(r.opts.Remote))
	}
	dir := filepath.Dir(dst)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return localError(dir, err, "not a directory")
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".ssmkit-*")
	if err != nil {
		return localError(dir, err, "")
	}
	r.tmp, r.final = tmp, dst
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(tmp, data, buf); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// extract unpacks the tar of a remote directory named base: into
// Local/base when Local is a directory, else as Local itself.
func (r *receiver) extract(data io.Reader) error {
	if !r.opts.Recursive {
		return fmt.Errorf("%s: is a directory (use -r to copy a directory)", r.remote)
	}
	root := r.opts.Local
	strip := false
	if fi, err := os.Stat(root); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return localError(root, err, "")
		}
		if err := os.Mkdir(root, 0o755); err != nil {
			return localError(root, err, "")
		}
		r.created, strip = root, true
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", root)
	}
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: reading the directory stream: %w", r.remote, err)
		}
		name := path.Clean(h.Name)
		if strip {
			_, name, _ = strings.Cut(name, "/")
			if name == "" {
				continue
			}
		}
		if name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return fmt.Errorf("%s: refusing the unsafe path %q from the node", r.remote, h.Name)
		}
		target := filepath.Join(root, filepath.FromSlash(name))
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return localError(target, err, "")
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return localError(target, err, "")
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return localError(target, err, "")
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("writing %s: %w", target, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return localError(target, err, "")
			}
		}
	}
}

// commit renames a downloaded file into place.
func (r *receiver) commit() error {
	if r.tmp == nil {
		return nil
	}
	if err := r.tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", r.final, err)
	}
	if err := os.Rename(r.tmp.Name(), r.final); err != nil {
		os.Remove(r.tmp.Name())
		return localError(r.final, err, "")
	}
	r.tmp = nil
	return nil
}

// abort removes what a failed download wrote.
func (r *receiver) abort() {
	if r.tmp != nil {
		r.tmp.Close()
		os.Remove(r.tmp.Name())
		r.tmp = nil
	}
	if r.created != "" {
		os.RemoveAll(r.created)
	}
}

func localError(p string, err error, fallback string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file or directory", p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied", p)
	case err == nil:
		return fmt.Errorf("%s: %s", p, fallback)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// lineBuffer collects a stream and splits it into lines.
type lineBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 { // messages only: never unbounded
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lineBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range strings.Split(l.b.String(), "\n") {
		if s = strings.TrimRight(s, "\r"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ---- progress ----

// progress draws a one-line byte counter on a terminal's standard error,
// at most ten times a second; elsewhere it does nothing.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	name  string
	total int64
	n     int64
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(ios *iostreams.IOStreams, name string, total int64) *progress {
	p := &progress{name: name, total: total, start: time.Now()}
	if ios.IsStderrTTY() {
		p.w = ios.ErrOut
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	if p == nil || p.w == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.n) / secs / 1e6
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s  %3d%%  %s / %s  %.1f MB/s\x1b[K", p.name, p.n*100/p.total, mib(p.n), mib(p.total), rate)
	} else {
		fmt.Fprintf(p.w, "\r%s  %s  %.1f MB/s\x1b[K", p.name, mib(p.n), rate)
	}
	p.drawn = true
}

func (p *progress) finish() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn || p.n > 0 {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
