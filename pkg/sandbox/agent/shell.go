package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
	"unicode/utf8"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// ptyReadSize is how much pty output one read takes. Upstream reads 1 KiB;
// larger reads mean fewer messages when output is fast.
const ptyReadSize = 8 << 10

// outputDrainTimeout bounds how long the agent reads the pty after the
// shell exited: output still in the pty buffer is sent, but a program that
// keeps the terminal busy does not hold the session open.
const outputDrainTimeout = 2 * time.Second

// shellPlugin serves Standard_Stream (a login-less interactive shell) and
// InteractiveCommands (sh -c <commands>), both in a pty (§7.2).
type shellPlugin struct {
	s        *session
	commands string // InteractiveCommands only
	isCmd    bool
}

func newShellPlugin(s *session, commands bool) (*shellPlugin, error) {
	p := &shellPlugin{s: s, isCmd: commands}
	if commands {
		c, err := propString(platformProperties(s.doc.Properties), "commands")
		if err != nil {
			return nil, fmt.Errorf("interactive commands session: %w", err)
		}
		if c == "" {
			return nil, errors.New("interactive commands session: the document has no properties.linux.commands")
		}
		p.commands = c
	}
	return p, nil
}

func (p *shellPlugin) serve(ch *datachannel.Channel, _ datachannel.SessionInfo) (string, string) {
	s := p.s
	ru, err := s.resolveRunAs()
	if err != nil {
		return s.failShell(ch, err, false)
	}
	var cmd *exec.Cmd
	if p.isCmd {
		cmd = exec.Command("/bin/sh", "-c", p.commands)
	} else {
		cmd = exec.Command(s.a.cfg.Shell)
	}
	cmd.Env = s.environment(ru, true)
	cmd.Dir = s.workDir(ru)
	cmd.SysProcAttr = sysProcAttr(ru)
	// No size yet: like the real agent (pty.Start), the terminal is 0×0
	// until the client's first Size message.
	ptmx, err := startPTY(cmd)
	if err != nil {
		return s.failShell(ch, fmt.Errorf("starting %s: %w", cmd.Path, err), false)
	}
	pid := cmd.Process.Pid
	s.logf("shell started (pid %d)", pid)
	started := time.Now()

	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()

	s.setHandler(func(pkt datachannel.Packet) error {
		if pkt.Type != wire.PayloadSize {
			return nil
		}
		var sz wire.SizeData
		if err := wire.DecodeJSON(pkt.Data, &sz); err != nil {
			return nil // a bad Size is dropped, not retried
		}
		if sz.Cols == 0 || sz.Rows == 0 {
			return nil
		}
		// §7.2: cols and rows are truncated to uint16.
		_ = setPTYSize(ptmx, uint16(sz.Cols), uint16(sz.Rows))
		return nil
	})

	tr := s.openTranscript(started)
	outDone := make(chan struct{})
	s.goroutine(func() {
		defer close(outDone)
		if d := s.a.cfg.FirstOutputDelay; d > 0 {
			// Opt-in realism: the real agent waits before its first read.
			select {
			case <-time.After(d):
			case <-s.ctx.Done():
			case <-ch.Done():
			}
		}
		pumpOutput(ptmx, ch, tr)
	})
	profile := ""
	if !p.isCmd {
		profile = s.doc.Inputs.ShellProfile.Linux
	}
	s.goroutine(func() {
		if profile != "" {
			// The real agent types the profile into the new shell, before
			// anything the client sends.
			_, _ = ptmx.Write([]byte(profile + "\n"))
		}
		copyInput(ch, ptmx)
	})

	exited := false
	select {
	case <-waitCh:
		exited = true
	case <-s.ctx.Done():
	case <-ch.Done():
	}
	// Kill whatever is left of the session: the shell when it was cancelled,
	// background jobs when it exited. Then reap the shell.
	killSession(pid)
	if !exited {
		<-waitCh
	}
	if exited && s.ctx.Err() == nil {
		// Send what is still in the pty, then end the session (§7.4).
		select {
		case <-outDone:
		case <-ch.Done():
		case <-s.ctx.Done():
		case <-time.After(outputDrainTimeout):
		}
		_ = ptmx.Close()
		s.logf("shell exited")
		s.finishShell(ch)
		return taskSuccess, ""
	}
	_ = ptmx.Close()
	s.logf("shell stopped")
	return s.channelEnded(ch)
}

// pumpOutput copies pty output to the client (and the transcript) until the
// pty or the channel fails. An incomplete UTF-8 sequence at the end of a
// read is held back for the next one (§7.2).
func pumpOutput(ptmx io.Reader, ch *datachannel.Channel, tr io.Writer) {
	buf := make([]byte, ptyReadSize+utf8.UTFMax)
	carry := 0
	for {
		n, err := ptmx.Read(buf[carry : carry+ptyReadSize])
		n += carry
		carry = 0
		if n > 0 {
			out := buf[:n]
			if err == nil {
				if k := incompleteUTF8(out); k > 0 && k < n {
					carry = k
					out = out[:n-k]
				}
			}
			if tr != nil {
				_, _ = tr.Write(out)
			}
			if _, werr := ch.Write(out); werr != nil {
				return
			}
			if carry > 0 {
				copy(buf, buf[n-carry:n])
			}
		}
		if err != nil {
			return
		}
	}
}

// incompleteUTF8 returns how many bytes at the end of b start a UTF-8
// sequence that is not complete yet (0 to 3).
func incompleteUTF8(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0 // ASCII: nothing pending
		}
		if c >= 0xC0 { // a leading byte
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			default:
				need = 2
			}
			if need > k {
				return k
			}
			return 0
		}
	}
	return 0
}

// copyInput writes client input to the pty until the channel ends.
func copyInput(ch *datachannel.Channel, w io.Writer) {
	buf := make([]byte, 32<<10)
	for {
		n, err := ch.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, os.ErrClosed) {
					// The shell is gone; keep draining so the channel's
					// receive side never stalls on us.
					continue
				}
				return
			}
		}
		if err != nil {
			return
		}
	}
}
