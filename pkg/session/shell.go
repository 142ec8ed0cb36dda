package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// Terminal describes the user's terminal for RunShell.
type Terminal struct {
	// Fd is the terminal's file descriptor, put in raw mode for the
	// session; a negative Fd leaves the mode alone.
	Fd int
	// Size returns the terminal's columns and rows.
	Size func() (cols, rows int, err error)
}

// TerminalFor returns the Terminal of f, or nil when f is not a terminal.
func TerminalFor(f *os.File) *Terminal {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return &Terminal{Fd: fd, Size: func() (int, int, error) { return term.GetSize(fd) }}
}

// ShellIO connects RunShell to the user.
type ShellIO struct {
	// Stdin is sent to the remote shell.
	Stdin io.Reader
	// Stdout receives the shell's output.
	Stdout io.Writer
	// Stderr receives messages from ssmkit and the service.
	Stderr io.Writer
	// TTY is the user's terminal; nil when stdin is not a terminal.
	TTY *Terminal
	// Resize signals a terminal size change (SIGWINCH); see
	// NotifyTerminalSignals.
	Resize <-chan struct{}
	// Signals carries SIGINT, SIGQUIT and SIGTSTP to forward to the remote
	// shell as keystrokes; see NotifyTerminalSignals.
	Signals <-chan os.Signal
}

// Terminal sizes (§7.1): what is sent when the size is unknown.
const (
	fallbackCols = 300
	fallbackRows = 100
)

// stdinChunk is the read size for stdin and local sockets (§7.1, §8.3).
const stdinChunk = 1024

// Keystroke bytes (§7.1).
const (
	keyInterrupt = 0x03 // SIGINT, Ctrl-C
	keyEOF       = 0x04 // Ctrl-D
	keyQuit      = 0x1C // SIGQUIT, Ctrl-\
	keySuspend   = 0x1A // SIGTSTP, Ctrl-Z
)

// RunShell runs an interactive shell (Standard_Stream or
// InteractiveCommands) until the remote side ends it (§7.1).
//
// On a terminal it puts the terminal in raw mode (restored on return),
// sends the size at once and on every Resize, turns a lone "\n" read into
// "\r" and forwards Signals as the keystrokes 0x03, 0x1C and 0x1A.
// Without a terminal, end of input sends Ctrl-D so that the remote shell
// sees end of input too.
//
// A session closed by the service ends with `Exiting session with
// sessionId: <id>.` on Stderr and a nil error. If ctx ends first, the
// session is terminated and ctx's error returned.
func RunShell(ctx context.Context, s *Session, sio ShellIO) error {
	stdout, stderr := gate(sio.Stdout), gate(sio.Stderr)
	defer stdout.close()
	defer stderr.close()
	s.setHandler(func(p datachannel.Packet) error {
		// The official client prints every payload type to stdout; keep
		// stderr bytes on stderr.
		if p.Type == wire.PayloadStdErr {
			_, _ = stderr.Write(p.Data)
		}
		return nil
	})
	if msg := s.info.CustomerMessage; msg != "" {
		fmt.Fprintln(stderr, msg)
	}

	restore := func() {}
	if sio.TTY != nil && sio.TTY.Fd >= 0 {
		old, err := term.MakeRaw(sio.TTY.Fd)
		if err != nil {
			return fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		var once sync.Once
		restore = func() { once.Do(func() { _ = term.Restore(sio.TTY.Fd, old) }) }
	}
	defer restore()

	lastCols, lastRows := -1, -1
	sendSize := func() {
		cols, rows := fallbackCols, fallbackRows
		if sio.TTY != nil && sio.TTY.Size != nil {
			if c, r, err := sio.TTY.Size(); err == nil && c > 0 && r > 0 {
				cols, rows = c, r
			}
		}
		if cols == lastCols && rows == lastRows {
			return
		}
		lastCols, lastRows = cols, rows
		if err := s.ch.SendSize(uint32(cols), uint32(rows)); err != nil {
			s.logf("sending terminal size: %v", err)
		}
	}
	sendSize()

	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, s.ch)
		outDone <- err
	}()
	inDone := make(chan error, 1)
	if sio.Stdin != nil {
		go func() { inDone <- pumpStdin(s.ch, sio.Stdin, sio.TTY != nil) }()
	}

	for {
		select {
		case <-sio.Resize:
			sendSize()
		case sig := <-sio.Signals:
			if sio.TTY == nil {
				continue
			}
			if b, ok := signalKey(sig); ok {
				if _, err := s.ch.Write([]byte{b}); err != nil {
					s.logf("forwarding %v: %v", sig, err)
				}
			}
		case err := <-inDone:
			inDone = nil
			if err == nil && sio.TTY == nil {
				// End of piped input: let the remote shell see it too.
				_, _ = s.ch.Write([]byte{keyEOF})
			} else if err != nil && !errors.Is(err, io.EOF) {
				s.logf("reading stdin: %v", err)
			}
		case err := <-outDone:
			restore()
			msg, endErr := s.ended(true)
			if endErr != nil {
				return endErr
			}
			if err != nil && !errors.Is(err, datachannel.ErrClosed) {
				return fmt.Errorf("writing session output: %w", err)
			}
			if msg != "" {
				fmt.Fprintf(stderr, "\n%s\n", msg)
			}
			return nil
		case <-ctx.Done():
			restore()
			s.terminateQuietly(ctx)
			return ctx.Err()
		}
	}
}

// pumpStdin copies r to the channel one read at a time (§7.1). It returns
// nil at end of input.
func pumpStdin(ch *datachannel.Channel, r io.Reader, tty bool) error {
	buf := make([]byte, stdinChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			if tty && n == 1 && p[0] == '\n' {
				p = []byte{'\r'} // §7.1, §11.23
			}
			if _, werr := ch.Write(p); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// signalKey maps a signal to the keystroke the remote shell receives.
func signalKey(sig os.Signal) (byte, bool) {
	switch sig {
	case os.Interrupt:
		return keyInterrupt, true
	case sigQuit:
		return keyQuit, true
	case sigTSTP:
		return keySuspend, true
	}
	return 0, false
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// gatedWriter stops passing writes on once closed, so that goroutines
// still draining the channel never write to the caller's streams after a
// mode function has returned.
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func gate(w io.Writer) *gatedWriter { return &gatedWriter{w: orDiscard(w)} }

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
