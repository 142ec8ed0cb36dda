package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// streamFlushWait bounds how long Stream waits, at end of input, for the
// agent to acknowledge the last bytes.
const streamFlushWait = 5 * time.Second

// streamLinger is how long Stream keeps delivering output after the end
// of input before it ends the session itself.
const streamLinger = 2 * time.Second

// Stream copies in to the session and the session to out: the
// standard-stream mode of AWS-StartSSHSession, used as an OpenSSH
// ProxyCommand (§8.6). It returns nil when in reaches end of input or the
// service closes the session, and ctx's error if ctx ends first.
//
// At end of input it waits for the last bytes to be acknowledged, keeps
// delivering output until the remote side closes or streamLinger passes,
// and then, unlike the official client, ends the session with the
// TerminateSession flag (when the agent supports it) instead of leaving it
// to idle out.
func Stream(ctx context.Context, s *Session, in io.Reader, out io.Writer) error {
	s.setHandler(func(p datachannel.Packet) error {
		if p.Type == wire.PayloadFlag {
			if f, err := wire.DecodeFlag(p.Data); err == nil {
				s.logf("flag %v", f)
			}
		}
		return nil
	})
	gout := gate(out)
	defer gout.close()
	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(gout, s.ch)
		outDone <- err
	}()
	inDone := make(chan error, 1)
	go func() { inDone <- pumpStdin(s.ch, in, false) }()

	select {
	case err := <-inDone:
		if err != nil && !errors.Is(err, datachannel.ErrClosed) {
			if _, endErr := s.ended(false); endErr != nil {
				return endErr
			}
			return fmt.Errorf("reading standard input: %w", err)
		}
		fctx, cancel := context.WithTimeout(ctx, streamFlushWait)
		_ = s.ch.Flush(fctx)
		cancel()
		// The remote end may still be answering what it just got: give
		// its output a moment to arrive (the session usually ends first,
		// when the remote side closes), then end the session.
		select {
		case err := <-outDone:
			if _, endErr := s.ended(false); endErr != nil {
				return endErr
			}
			if err != nil && !errors.Is(err, datachannel.ErrClosed) {
				return fmt.Errorf("writing standard output: %w", err)
			}
			return nil
		case <-time.After(streamLinger):
		case <-ctx.Done():
		}
		if version.ClientSendsTerminateFlag(s.info.AgentVersion) {
			if err := s.ch.SendFlag(wire.FlagTerminateSession); err == nil {
				fctx, cancel := context.WithTimeout(ctx, flushWait)
				_ = s.ch.Flush(fctx)
				cancel()
			}
		}
		return nil
	case err := <-outDone:
		_, endErr := s.ended(false)
		if endErr != nil {
			return endErr
		}
		if err != nil && !errors.Is(err, datachannel.ErrClosed) {
			return fmt.Errorf("writing standard output: %w", err)
		}
		return nil
	case <-ctx.Done():
		s.terminateQuietly(ctx)
		return ctx.Err()
	}
}

// Bytes returns the session's byte stream for callers that frame their
// own data (ssmkit cp): Read returns the agent's output in order and io.EOF
// once the session has ended; Write sends input. Messages other than
// output (stderr, flags) are ignored from then on.
func (s *Session) Bytes() io.ReadWriter {
	s.setHandler(func(datachannel.Packet) error { return nil })
	return s.ch
}
