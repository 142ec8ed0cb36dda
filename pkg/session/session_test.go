package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

const target = "i-0123456789abcdef0"

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, api session.SSMAPI, req session.StartRequest) *session.Session {
	t.Helper()
	s, err := session.Open(testCtx(t), api, req, session.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type shellRun struct {
	stdin  *io.PipeWriter
	stdout *testutil.SyncBuffer
	stderr *testutil.SyncBuffer
	done   chan error
}

func startShell(t *testing.T, ctx context.Context, s *session.Session, sio session.ShellIO) *shellRun {
	t.Helper()
	pr, pw := io.Pipe()
	r := &shellRun{stdin: pw, stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	sio.Stdin, sio.Stdout, sio.Stderr = pr, r.stdout, r.stderr
	go func() { r.done <- session.RunShell(ctx, s, sio) }()
	t.Cleanup(func() { pw.Close() })
	return r
}

func (r *shellRun) write(t *testing.T, s string) {
	t.Helper()
	if _, err := r.stdin.Write([]byte(s)); err != nil {
		t.Fatalf("writing stdin: %v", err)
	}
}

func (r *shellRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("shell did not end")
		return nil
	}
}

func TestShellTerminal(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	if s.Info().SessionType != ssmdoc.SessionTypeStandardStream {
		t.Fatalf("session type %q", s.Info().SessionType)
	}

	var mu sync.Mutex
	cols, rows := 100, 40
	resize := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 1)
	tty := &session.Terminal{Fd: -1, Size: func() (int, int, error) {
		mu.Lock()
		defer mu.Unlock()
		return cols, rows, nil
	}}
	r := startShell(t, testCtx(t), s, session.ShellIO{TTY: tty, Resize: resize, Signals: sigs})

	waitFor(t, "the initial size", func() bool { return len(svc.Sizes(s.ID())) == 1 })
	mu.Lock()
	cols, rows = 120, 50
	mu.Unlock()
	resize <- struct{}{}
	waitFor(t, "the new size", func() bool { return len(svc.Sizes(s.ID())) == 2 })
	if got := svc.Sizes(s.ID()); got[0] != (wire.SizeData{Cols: 100, Rows: 40}) || got[1] != (wire.SizeData{Cols: 120, Rows: 50}) {
		t.Errorf("sizes = %+v", got)
	}

	r.write(t, "ls\n") // several bytes: sent as is
	waitFor(t, "ls echo", func() bool { return strings.HasSuffix(r.stdout.String(), "ls\n") })
	r.write(t, "\n") // a lone newline keystroke becomes CR (§7.1)
	waitFor(t, "CR echo", func() bool { return strings.HasSuffix(r.stdout.String(), "ls\n\r") })
	sigs <- os.Interrupt
	waitFor(t, "Ctrl-C", func() bool { return strings.HasSuffix(r.stdout.String(), "\r\x03") })
	r.write(t, "exit\r")
	if err := r.wait(t); err != nil {
		t.Fatalf("RunShell: %v", err)
	}
	if want := sessiontest.Banner + "ls\n\r\x03exit\r"; r.stdout.String() != want {
		t.Errorf("stdout = %q, want %q", r.stdout.String(), want)
	}
	if want := "Exiting session with sessionId: " + s.ID() + "."; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", r.stderr.String(), want)
	}
	if strings.Contains(r.stdout.String(), "Exiting") {
		t.Error("the exit message went to stdout")
	}
}

func TestShellPipedInput(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	var stdout, stderr testutil.SyncBuffer
	err := session.RunShell(testCtx(t), s, session.ShellIO{
		Stdin:  strings.NewReader("\n"),
		Stdout: &stdout,
		Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("RunShell: %v", err)
	}
	// Not a terminal: "\n" is sent as is, and end of input sends Ctrl-D.
	if want := sessiontest.Banner + "\n\x04"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if got := svc.Sizes(s.ID()); len(got) != 1 || got[0] != (wire.SizeData{Cols: 300, Rows: 100}) {
		t.Errorf("sizes = %+v, want the 300x100 fallback", got)
	}
}

func TestShellChannelClosedOutput(t *testing.T) {
	svc := sessiontest.New(t)
	svc.SetCloseOutput("Session terminated by an administrator")
	s := open(t, svc, session.StartRequest{Target: target})
	var stdout, stderr testutil.SyncBuffer
	err := session.RunShell(testCtx(t), s, session.ShellIO{Stdin: strings.NewReader("exit\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("RunShell: %v", err)
	}
	want := "SessionId: " + s.ID() + " : Session terminated by an administrator"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	var ce *datachannel.ClosedError
	if !errors.As(s.Err(), &ce) || ce.Output == "" {
		t.Errorf("Err = %v, want a ClosedError with output", s.Err())
	}
}

func TestShellContextCancelTerminates(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	ctx, cancel := context.WithCancel(testCtx(t))
	r := startShell(t, ctx, s, session.ShellIO{})
	waitFor(t, "banner", func() bool { return r.stdout.String() == sessiontest.Banner })
	cancel()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("RunShell = %v, want context.Canceled", err)
	}
	if svc.Terminates() != 1 {
		t.Errorf("TerminateSession calls = %d, want 1", svc.Terminates())
	}
}

func TestRunCommandExitCode(t *testing.T) {
	svc := sessiontest.New(t)
	svc.Plugin = func(*ssm.StartSessionInput) (sessiontest.Plugin, error) {
		return sessiontest.Command("hello stdout\n", "hello stderr\n", 3), nil
	}
	s := open(t, svc, session.CommandRequest(target, "whatever", false, ""))
	if s.Info().SessionType != ssmdoc.SessionTypeNonInteractiveCommands {
		t.Fatalf("session type %q", s.Info().SessionType)
	}
	var stdout, stderr testutil.SyncBuffer
	code, err := session.RunCommand(testCtx(t), s, session.CommandIO{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if stdout.String() != "hello stdout\n" || stderr.String() != "hello stderr\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if got := svc.Starts()[0]; aws.ToString(got.DocumentName) != ssmdoc.NonInteractiveCommand ||
		fmt.Sprint(got.Parameters["command"]) != "[whatever]" {
		t.Errorf("StartSession = %s %v", aws.ToString(got.DocumentName), got.Parameters)
	}
}

func TestRunCommandZero(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.CommandRequest(target, "echo a; echo b", false, ""))
	var stdout bytes.Buffer
	code, err := session.RunCommand(testCtx(t), s, session.CommandIO{Stdout: &stdout})
	if err != nil || code != 0 || stdout.String() != "a\nb\n" {
		t.Fatalf("RunCommand = %d, %v, stdout %q", code, err, stdout.String())
	}
}

// forward runs Forward in the background and returns the local address.
func forward(t *testing.T, ctx context.Context, s *session.Session, stderr io.Writer) (string, chan error) {
	t.Helper()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- session.Forward(ctx, s, session.ForwardOptions{
			OnReady: func(a net.Addr) { ready <- a.String() },
			Stderr:  stderr,
		})
	}()
	select {
	case a := <-ready:
		return a, done
	case err := <-done:
		t.Fatalf("Forward: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Forward never became ready")
	}
	return "", nil
}

func waitErr(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("timed out")
		return nil
	}
}

// echoRoundTrip sends size random bytes through addr and checks the echo.
func echoRoundTrip(addr string, size int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	src := make([]byte, size)
	_, _ = rand.Read(src)
	werr := make(chan error, 1)
	go func() { _, err := c.Write(src); werr <- err }()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading echo: %w", err)
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, src) {
		return errors.New("echo differs")
	}
	return nil
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func TestForwardMuxConcurrent(t *testing.T) {
	echo := sessiontest.EchoServer(t)
	svc := sessiontest.New(t)
	s := open(t, svc, session.PortForwardRequest(target, portOf(t, echo), 0, ""))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	addr, done := forward(t, ctx, s, io.Discard)

	conns, size := 50, 64<<10
	if testing.Short() {
		conns = 10
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := echoRoundTrip(addr, size); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	elapsed := time.Since(start)
	t.Logf("%d connections × %d KiB echoed in %v (%.1f MB/s each way)", conns, size>>10, elapsed,
		float64(conns*size)/elapsed.Seconds()/1e6)

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if f := svc.Flags(s.ID()); len(f) == 0 || f[len(f)-1] != wire.FlagTerminateSession {
		t.Errorf("flags = %v, want TerminateSession last", f)
	}
	waitFor(t, "the agent to end", func() bool { return svc.Ended(s.ID()) })
	if svc.Terminates() != 0 {
		t.Errorf("TerminateSession API called %d times; mux mode ends with the flag", svc.Terminates())
	}
}

func TestForwardConnectToPortError(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.PortForwardRequest(target, portOf(t, sessiontest.ClosedPort(t)), 0, ""))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var stderr testutil.SyncBuffer
	addr, done := forward(t, ctx, s, &stderr)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read = %v, want EOF when the destination refuses", err)
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(stderr.String(), "connection to destination port failed") })
	// The session survives: a working connection still could follow.
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Forward: %v", err)
	}
}

func TestForwardBasicMode(t *testing.T) {
	for _, tc := range []struct {
		name          string
		agentVersion  string
		wantFlag      bool // Ctrl-C ends with the flag, else with the API
		wantTerminate int
	}{
		{name: "flag", agentVersion: "3.0.150.0", wantFlag: true},
		{name: "api", agentVersion: sessiontest.OldAgentVersion, wantTerminate: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := sessiontest.EchoServer(t)
			svc := sessiontest.New(t)
			svc.Plugin = func(*ssm.StartSessionInput) (sessiontest.Plugin, error) {
				return sessiontest.BasicPort(echo, tc.agentVersion), nil
			}
			s := open(t, svc, session.PortForwardRequest(target, portOf(t, echo), 0, ""))
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			addr, done := forward(t, ctx, s, io.Discard)

			for i := 1; i <= 2; i++ {
				if err := echoRoundTrip(addr, 8<<10); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				waitFor(t, "DisconnectToPort", func() bool {
					n := 0
					for _, f := range svc.Flags(s.ID()) {
						if f == wire.FlagDisconnectToPort {
							n++
						}
					}
					return n == i
				})
			}
			cancel()
			if err := waitErr(t, done); err != nil {
				t.Fatalf("Forward: %v", err)
			}
			flags := svc.Flags(s.ID())
			gotFlag := len(flags) > 0 && flags[len(flags)-1] == wire.FlagTerminateSession
			if gotFlag != tc.wantFlag || svc.Terminates() != tc.wantTerminate {
				t.Errorf("flags %v, TerminateSession calls %d", flags, svc.Terminates())
			}
		})
	}
}

func TestForwardRejectsNonPortSession(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	err := session.Forward(testCtx(t), s, session.ForwardOptions{})
	if !errors.Is(err, session.ErrNotPortSession) {
		t.Fatalf("Forward = %v, want ErrNotPortSession", err)
	}
}

func TestReconnectResumes(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	r := startShell(t, testCtx(t), s, session.ShellIO{})
	waitFor(t, "banner", func() bool { return r.stdout.String() == sessiontest.Banner })
	firstToken := svc.Token(s.ID())

	var want strings.Builder
	want.WriteString(sessiontest.Banner)
	for i := 0; i < 200; i++ {
		line := fmt.Sprintf("line-%03d\n", i)
		want.WriteString(line)
		r.write(t, line)
		if i == 100 {
			svc.DropConnections()
		}
	}
	waitFor(t, "every line echoed", func() bool { return r.stdout.String() == want.String() })
	if svc.Resumes() < 1 {
		t.Errorf("ResumeSession calls = %d", svc.Resumes())
	}
	if svc.Token(s.ID()) == firstToken {
		t.Error("the reconnect did not use the token from ResumeSession")
	}
	r.write(t, "exit\n")
	if err := r.wait(t); err != nil {
		t.Fatalf("RunShell: %v", err)
	}
	if r.stdout.String() != want.String()+"exit\n" {
		t.Errorf("output differs after the reconnect")
	}
}

func TestResumeNullTokenEndsCleanly(t *testing.T) {
	svc := sessiontest.New(t)
	s := open(t, svc, session.StartRequest{Target: target})
	r := startShell(t, testCtx(t), s, session.ShellIO{})
	waitFor(t, "banner", func() bool { return r.stdout.String() == sessiontest.Banner })
	svc.SetResumeNullToken(true)
	svc.DropConnections()
	if err := r.wait(t); err != nil {
		t.Fatalf("RunShell = %v, want nil", err)
	}
	if want := "Session: " + s.ID() + " timed out."; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", r.stderr.String(), want)
	}
	if !errors.Is(s.Err(), session.ErrTimedOut) {
		t.Errorf("Err = %v", s.Err())
	}
	if n := svc.Resumes(); n != 1 {
		t.Errorf("ResumeSession calls = %d, want 1", n)
	}
}

// badTokenAPI hands out a token the service does not know, and cannot
// resume.
type badTokenAPI struct{ *sessiontest.Service }

const secretToken = "s3cr3t-t0ken-value"

func (b badTokenAPI) StartSession(ctx context.Context, in *ssm.StartSessionInput, o ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	out, err := b.Service.StartSession(ctx, in, o...)
	if err == nil {
		out.TokenValue = aws.String(secretToken)
	}
	return out, err
}

func (b badTokenAPI) ResumeSession(context.Context, *ssm.ResumeSessionInput, ...func(*ssm.Options)) (*ssm.ResumeSessionOutput, error) {
	return nil, errors.New("AccessDeniedException: not allowed")
}

func TestBadTokenNeverInErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the reconnect back-off")
	}
	svc := sessiontest.New(t)
	var logs testutil.SyncBuffer
	_, err := session.Open(testCtx(t), badTokenAPI{svc}, session.StartRequest{Target: target}, session.Options{
		Logf: func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) },
	})
	if err == nil {
		t.Fatal("Open succeeded with a bad token")
	}
	if svc.Rejected() == 0 {
		t.Error("the service never saw the bad token")
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(logs.String(), secretToken) {
		t.Errorf("the token leaked: %v / %s", err, logs.String())
	}
	if svc.Terminates() != 1 {
		t.Errorf("a failed Open should terminate the session; TerminateSession calls = %d", svc.Terminates())
	}
}

func TestOpenStartError(t *testing.T) {
	svc := sessiontest.New(t)
	svc.FailStart(errors.New("TargetNotConnected: i-0123456789abcdef0 is not connected"))
	_, err := session.Open(testCtx(t), svc, session.StartRequest{Target: target}, session.Options{})
	if err == nil || !strings.Contains(err.Error(), "starting session on "+target) {
		t.Fatalf("Open = %v", err)
	}
}

func TestStreamSSH(t *testing.T) {
	echo := sessiontest.EchoServer(t)
	svc := sessiontest.New(t)
	s := open(t, svc, session.SSHRequest(target, portOf(t, echo)))
	pr, pw := io.Pipe()
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- session.Stream(testCtx(t), s, pr, &out) }()
	if _, err := pw.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "echo", func() bool { return out.String() == "SSH-2.0-OpenSSH_9.6\r\n" })
	pw.Close() // ssh closes the ProxyCommand's stdin when it is done
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if f := svc.Flags(s.ID()); len(f) != 1 || f[0] != wire.FlagTerminateSession {
		t.Errorf("flags = %v, want TerminateSession", f)
	}
}

func TestStreamEndsWhenServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("bye\n"))
			c.Close()
		}
	}()
	svc := sessiontest.New(t)
	s := open(t, svc, session.SSHRequest(target, portOf(t, ln.Addr().String())))
	pr, pw := io.Pipe()
	defer pw.Close()
	var out testutil.SyncBuffer
	if err := session.Stream(testCtx(t), s, pr, &out); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if out.String() != "bye\n" {
		t.Errorf("out = %q", out.String())
	}
}

func TestResendTimeoutTerminates(t *testing.T) {
	svc := sessiontest.New(t)
	s, err := session.Open(testCtx(t), svc, session.StartRequest{Target: target}, session.Options{
		Tune: func(c *datachannel.Config) {
			c.GiveUpAfter = 300 * time.Millisecond
			c.ResendInterval = 10 * time.Millisecond
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := startShell(t, testCtx(t), s, session.ShellIO{})
	waitFor(t, "banner", func() bool { return r.stdout.String() == sessiontest.Banner })
	svc.Blackhole(true)
	r.write(t, "lost\n")
	err = r.wait(t)
	if !errors.Is(err, datachannel.ErrResendTimeout) {
		t.Fatalf("RunShell = %v, want ErrResendTimeout", err)
	}
	waitFor(t, "TerminateSession", func() bool { return svc.Terminates() == 1 })
}
