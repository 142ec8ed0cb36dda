package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/shlex"
	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
)

// commandReadSize is how much command output one read takes.
const commandReadSize = 8 << 10

// validPrefix is the rule for the separator prefixes (§5.7).
var validPrefix = regexp.MustCompile(`^[0-9a-zA-Z\r\n_:-]{0,30}$`)

// commandPlugin serves NonInteractiveCommands (§7.2): the commands run
// without a pty and without stdin; Ctrl-C and Ctrl-\ from the client become
// SIGINT and SIGQUIT. With separateOutputStream, stdout and stderr stream
// as they come (Output and StdErr) followed by the exit code; without it,
// the combined output is sent after the command has exited.
//
// As the real agent does, the commands are split shell-style (google/shlex,
// the agent's own splitter) and executed directly, without a shell: shell
// syntax such as pipes needs an explicit "sh -c" (ssmkit exec adds it for a
// command line that needs a shell), or it would work here and fail on a
// real node.
type commandPlugin struct {
	s                    *session
	commands             string
	separate             bool
	outPrefix, errPrefix string
}

func newCommandPlugin(s *session) (*commandPlugin, error) {
	props := platformProperties(s.doc.Properties)
	c, err := propString(props, "commands")
	if err != nil {
		return nil, fmt.Errorf("non-interactive commands session: %w", err)
	}
	if c == "" {
		return nil, errors.New("non-interactive commands session: the document has no properties.linux.commands")
	}
	p := &commandPlugin{s: s, commands: c, separate: propBool(props, "separateOutputStream")}
	if p.separate {
		if p.outPrefix, err = propString(props, "stdOutSeparatorPrefix"); err != nil {
			return nil, fmt.Errorf("non-interactive commands session: %w", err)
		}
		if p.errPrefix, err = propString(props, "stdErrSeparatorPrefix"); err != nil {
			return nil, fmt.Errorf("non-interactive commands session: %w", err)
		}
		for _, pre := range []string{p.outPrefix, p.errPrefix} {
			if !validPrefix.MatchString(pre) {
				return nil, fmt.Errorf("non-interactive commands session: separator prefix %q must match %s", pre, validPrefix)
			}
		}
	}
	return p, nil
}

func (p *commandPlugin) serve(ch *datachannel.Channel, _ datachannel.SessionInfo) (string, string) {
	s := p.s
	s.setHandler(func(datachannel.Packet) error { return nil }) // no pty: Size is ignored
	ru, err := s.resolveRunAs()
	if err != nil {
		return s.failShell(ch, err, p.separate)
	}
	argv, err := shlex.Split(p.commands)
	if err == nil && len(argv) == 0 {
		err = errors.New("no command")
	}
	if err != nil {
		return s.failShell(ch, fmt.Errorf("parsing the commands: %w", err), p.separate)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = s.environment(ru, false)
	cmd.Dir = s.workDir(ru)
	cmd.SysProcAttr = sysProcAttr(ru)
	tr := s.openTranscript(time.Now())

	var (
		combined         *os.File
		outR, errR       *os.File
		outW, errW       *os.File
		closeAfterStart  []*os.File
		closeAfterFinish []*os.File
	)
	if p.separate {
		if outR, outW, err = os.Pipe(); err == nil {
			errR, errW, err = os.Pipe()
			if err != nil {
				_ = outR.Close()
				_ = outW.Close()
			}
		}
		if err != nil {
			return s.failShell(ch, fmt.Errorf("creating output pipes: %w", err), true)
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		closeAfterStart = []*os.File{outW, errW}
		closeAfterFinish = []*os.File{outR, errR}
	} else {
		combined, err = os.CreateTemp("", "ssmkit-agent-output-*")
		if err != nil {
			return s.failShell(ch, fmt.Errorf("creating output file: %w", err), false)
		}
		_ = os.Remove(combined.Name()) // anonymous: nothing to clean up
		cmd.Stdout, cmd.Stderr = combined, combined
		closeAfterFinish = []*os.File{combined}
	}
	defer func() {
		for _, f := range closeAfterFinish {
			_ = f.Close()
		}
	}()

	err = cmd.Start()
	for _, f := range closeAfterStart {
		_ = f.Close()
	}
	if err != nil {
		if p.separate {
			// As the real agent: status 1 first, then the reason on stderr.
			_ = ch.SendExitCode(1)
		}
		return s.failShell(ch, fmt.Errorf("starting the command: %w", err), p.separate)
	}
	pid := cmd.Process.Pid
	s.logf("command started (pid %d)", pid)
	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()

	var reaped atomic.Bool
	s.goroutine(func() { forwardSignals(ch, pid, &reaped) })
	pumps := make(chan struct{}, 2)
	if p.separate {
		s.goroutine(func() {
			pumpPrefixed(outR, ch.Write, p.outPrefix, tr)
			pumps <- struct{}{}
		})
		s.goroutine(func() {
			pumpPrefixed(errR, ch.WriteStderr, p.errPrefix, tr)
			pumps <- struct{}{}
		})
	}

	exited := false
	select {
	case <-waitCh:
		exited = true
	case <-s.ctx.Done():
	case <-ch.Done():
	}
	killSession(pid)
	if !exited {
		<-waitCh
	}
	reaped.Store(true)
	if !exited {
		s.logf("command stopped")
		return s.channelEnded(ch)
	}
	code := exitCode(cmd.ProcessState)
	s.logf("command exited with status %d", code)

	if p.separate {
		deadline := time.After(outputDrainTimeout)
	drain:
		for i := 0; i < 2; i++ {
			select {
			case <-pumps:
			case <-deadline:
				break drain
			case <-ch.Done():
				return s.channelEnded(ch)
			case <-s.ctx.Done():
				return s.channelEnded(ch)
			}
		}
		if err := ch.SendExitCode(code); err != nil {
			return s.channelEnded(ch)
		}
	} else {
		if _, err := combined.Seek(0, io.SeekStart); err == nil {
			w := io.Writer(ch)
			if tr != nil {
				w = io.MultiWriter(tr, ch)
			}
			if _, err := io.Copy(w, combined); err != nil {
				return s.channelEnded(ch)
			}
		}
	}
	s.finishShell(ch)
	if code != 0 {
		return taskFailed, fmt.Sprintf("command exited with status %d", code)
	}
	return taskSuccess, ""
}

// pumpPrefixed streams a command's stdout or stderr. The prefix goes at the
// start and after every chunk that ends a line (§7.2).
func pumpPrefixed(r io.Reader, write func([]byte) (int, error), prefix string, tr io.Writer) {
	buf := make([]byte, commandReadSize)
	lineStart := true
	var out bytes.Buffer
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if prefix != "" && lineStart {
				out.Reset()
				out.WriteString(prefix)
				out.Write(chunk)
				chunk = out.Bytes()
			}
			lineStart = buf[n-1] == '\n'
			if tr != nil {
				_, _ = tr.Write(chunk)
			}
			if _, werr := write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forwardSignals reads client input: there is no stdin, but Ctrl-C (0x03)
// and Ctrl-\ (0x1C) signal the command's process group (§7.2).
// Once the command is reaped (reaped), its pid may be reused: no signals.
func forwardSignals(ch *datachannel.Channel, pid int, reaped *atomic.Bool) {
	buf := make([]byte, 4096)
	for {
		n, err := ch.Read(buf)
		for _, c := range buf[:n] {
			if reaped.Load() {
				break
			}
			switch c {
			case 0x03:
				signalGroup(pid, syscall.SIGINT)
			case 0x1C:
				signalGroup(pid, syscall.SIGQUIT)
			}
		}
		if err != nil {
			return
		}
	}
}
