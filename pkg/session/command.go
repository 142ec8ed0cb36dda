package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// CommandIO connects RunCommand to the user. A non-interactive command
// has no standard input (§7.2).
type CommandIO struct {
	// Stdout receives the command's standard output (PayloadType 1).
	Stdout io.Writer
	// Stderr receives its standard error (PayloadType 11) and messages
	// from ssmkit and the service.
	Stderr io.Writer
}

// NoExitCode is what RunCommand returns when the agent sent no exit code:
// the document does not set separateOutputStream, so the agent streams
// merged output and never reports the status (§7.2).
const NoExitCode = -1

// RunCommand runs a NonInteractiveCommands session to its end and returns
// the command's exit code (§7.2, §3.4.5), or NoExitCode when the document
// does not report one. If ctx ends first, the session is terminated and
// ctx's error returned.
func RunCommand(ctx context.Context, s *Session, cio CommandIO) (int, error) {
	stdout, stderr := gate(cio.Stdout), gate(cio.Stderr)
	defer stdout.close()
	defer stderr.close()
	var code atomic.Int64
	code.Store(NoExitCode)
	s.setHandler(func(p datachannel.Packet) error {
		switch p.Type {
		case wire.PayloadStdErr:
			_, _ = stderr.Write(p.Data)
		case wire.PayloadExitCode:
			c, err := wire.DecodeExitCode(p.Data)
			if err != nil {
				s.logf("ignoring exit code message: %v", err)
				return nil
			}
			code.Store(int64(c))
		}
		return nil
	})
	if msg := s.info.CustomerMessage; msg != "" {
		fmt.Fprintln(stderr, msg)
	}

	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, s.ch)
		outDone <- err
	}()
	select {
	case err := <-outDone:
		msg, endErr := s.ended(false)
		if endErr != nil {
			return NoExitCode, endErr
		}
		if err != nil && !errors.Is(err, datachannel.ErrClosed) {
			return NoExitCode, fmt.Errorf("writing command output: %w", err)
		}
		if msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return int(code.Load()), nil
	case <-ctx.Done():
		s.terminateQuietly(ctx)
		return NoExitCode, ctx.Err()
	}
}
