package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

const instanceID = "i-0123456789abcdef0"

// startAgent runs an agent against f and waits for its control channel.
func startAgent(t *testing.T, f *fakeMGS, mutate func(*Config)) *Agent {
	t.Helper()
	cfg := Config{
		InstanceID:     instanceID,
		Region:         "us-east-1",
		Endpoint:       f.srv.URL,
		ReconnectDelay: 50 * time.Millisecond,
		WorkDir:        t.TempDir(),
	}
	if testing.Verbose() {
		cfg.Logf = t.Logf
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a := New(cfg)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = a.Close()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if !cfg.Offline {
		select {
		case open := <-f.ctlOpens:
			if open.AgentVersion != a.Version() || open.PlatformType != "linux" || open.MessageSchemaVersion != "1.0" || open.RequestID == "" {
				t.Fatalf("OpenControlChannel = %+v", open)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the agent did not open its control channel")
		}
	}
	return a
}

func shellDoc(inputs wire.SessionInputs) wire.SessionDocument {
	return wire.SessionDocument{SchemaVersion: "1.0", SessionType: ssmdoc.SessionTypeStandardStream, Inputs: inputs}
}

func docWith(sessionType, properties string) wire.SessionDocument {
	return wire.SessionDocument{SchemaVersion: "1.0", SessionType: sessionType, Properties: json.RawMessage(properties)}
}

// openShell starts a session and connects a client to it.
func openShell(t *testing.T, f *fakeMGS, sid string, doc wire.SessionDocument, cfg datachannel.Config) (*datachannel.Channel, datachannel.SessionInfo, *collector) {
	t.Helper()
	f.startSession(sid, doc, "")
	ch := f.connectClient(t, sid, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, err := ch.Handshake(ctx)
	if err != nil {
		// A short session may be over before Handshake notices it was
		// ready; what it established is still there.
		var ce *datachannel.ClosedError
		if info = ch.Info(); !errors.As(err, &ce) || info.SessionType == "" {
			t.Fatalf("handshake: %v", err)
		}
	}
	return ch, info, collect(ch)
}

// waitClosed waits for the client channel to end with channel_closed.
func waitClosed(t *testing.T, ch *datachannel.Channel) {
	t.Helper()
	select {
	case <-ch.Done():
		var ce *datachannel.ClosedError
		if !errors.As(ch.Err(), &ce) {
			t.Fatalf("client channel ended with %v, want channel_closed", ch.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client channel was not closed")
	}
}

func TestShellEchoAndExit(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60001"
	ch, info, out := openShell(t, f, sid, shellDoc(wire.SessionInputs{}), datachannel.Config{})
	if info.Handshake {
		t.Error("a plain shell ran a handshake")
	}
	if st := f.session(sid).waitState(t, 5*time.Second); st != wire.SessionStateConnected {
		t.Fatalf("first session state %q", st)
	}
	if _, err := ch.Write([]byte("echo hi-$((40+2))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "hi-42", 10*time.Second)
	if _, err := ch.Write([]byte("exit\n")); err != nil {
		t.Fatal(err)
	}
	if st := f.session(sid).waitState(t, 10*time.Second); st != wire.SessionStateTerminating {
		t.Fatalf("session state %q, want Terminating", st)
	}
	waitClosed(t, ch)
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.TaskID != sid || tc.Body.FinalTaskStatus != "Success" || tc.Body.InstanceID != instanceID || tc.Body.Topic != "agent_task_complete" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

func TestShellSizeAndProfile(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60002"
	doc := shellDoc(wire.SessionInputs{ShellProfile: wire.ShellProfile{Linux: "PROFILE_VAR=prof-$((6*7))"}})
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	if err := ch.SendSize(100, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Write([]byte("stty size; echo \"v=$PROFILE_VAR term=$TERM\"\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "40 100", 10*time.Second)
	out.waitFor(t, "v=prof-42 term=xterm-256color", 10*time.Second)
	if _, err := ch.Write([]byte("exit\n")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
}

func TestInteractiveCommands(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60003"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":["echo ic-$((2+3))","test -t 0 && echo tty-yes"],"runAsElevated":false}}`)
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	out.waitFor(t, "ic-5", 10*time.Second)
	out.waitFor(t, "tty-yes", 10*time.Second)
	sess := f.session(sid)
	sess.waitState(t, 5*time.Second) // Connected
	if st := sess.waitState(t, 10*time.Second); st != wire.SessionStateTerminating {
		t.Fatalf("session state %q, want Terminating", st)
	}
	waitClosed(t, ch)
	if tc := f.waitTaskComplete(t, 10*time.Second); tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

// packets collects the client's StdErr and ExitCode messages.
type packets struct {
	mu     sync.Mutex
	stderr strings.Builder
	codes  []int
	flags  []wire.Flag
	seen   chan struct{}
}

func newPackets() *packets { return &packets{seen: make(chan struct{}, 64)} }

func (p *packets) handle(pkt datachannel.Packet) error {
	p.mu.Lock()
	switch pkt.Type {
	case wire.PayloadStdErr:
		p.stderr.Write(pkt.Data)
	case wire.PayloadExitCode:
		n, err := wire.DecodeExitCode(pkt.Data)
		if err == nil {
			p.codes = append(p.codes, n)
		}
	case wire.PayloadFlag:
		fl, err := wire.DecodeFlag(pkt.Data)
		if err == nil {
			p.flags = append(p.flags, fl)
		}
	}
	p.mu.Unlock()
	select {
	case p.seen <- struct{}{}:
	default:
	}
	return nil
}

func TestNonInteractiveSeparateStreams(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60004"
	doc := docWith(ssmdoc.SessionTypeNonInteractiveCommands, `{"linux":{"commands":"sh -c 'echo out; echo err >&2; exit 3'",
		"separateOutputStream":"true","stdOutSeparatorPrefix":"STDOUT:","stdErrSeparatorPrefix":"STDERR:"}}`)
	pk := newPackets()
	ch, info, out := openShell(t, f, sid, doc, datachannel.Config{OnControl: pk.handle})
	if !info.Handshake || info.SessionType != ssmdoc.SessionTypeNonInteractiveCommands {
		t.Fatalf("handshake info %+v", info)
	}
	waitClosed(t, ch)
	<-out.done
	if got := out.String(); got != "STDOUT:out\n" {
		t.Errorf("stdout = %q", got)
	}
	pk.mu.Lock()
	stderr, codes := pk.stderr.String(), pk.codes
	pk.mu.Unlock()
	if stderr != "STDERR:err\n" {
		t.Errorf("stderr = %q", stderr)
	}
	if len(codes) != 1 || codes[0] != 3 {
		t.Errorf("exit codes = %v, want [3]", codes)
	}
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.FinalTaskStatus != "Failed" || !strings.Contains(tc.Body.Output, "3") {
		t.Errorf("agent_task_complete = %+v", tc.Body)
	}
}

func TestNonInteractiveCombinedOutput(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60005"
	doc := docWith(ssmdoc.SessionTypeNonInteractiveCommands, `{"linux":{"commands":"sh -c 'echo out; echo err >&2'"}}`)
	pk := newPackets()
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{OnControl: pk.handle})
	waitClosed(t, ch)
	<-out.done
	if got := out.String(); got != "out\nerr\n" {
		t.Errorf("output = %q", got)
	}
	if len(pk.codes) != 0 {
		t.Errorf("exit code sent without separate output: %v", pk.codes)
	}
	if tc := f.waitTaskComplete(t, 10*time.Second); tc.Body.FinalTaskStatus != "Success" {
		t.Errorf("agent_task_complete = %+v", tc.Body)
	}
}

// TestNonInteractiveNoShell: as the real agent (shell_unix.go), the commands
// are split shell-style and executed without a shell, so a pipe is an
// argument, and a command that cannot start ends with status 1 and the
// reason on stderr.
func TestNonInteractiveNoShell(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	for i, tt := range []struct {
		commands, out string
		code          int
	}{
		{`echo 'a  b' | wc -l`, "a  b | wc -l\n", 0},
		{`printf '%s,' "x y" z\ w`, "x y,z w,", 0},
		{`no-such-command-ssmkit --x`, "", 1},
	} {
		sid := fmt.Sprintf("alice-0a1b2c3d4e5f6001%d", i)
		props, _ := json.Marshal(map[string]any{"linux": map[string]any{"commands": tt.commands, "separateOutputStream": true}})
		doc := docWith(ssmdoc.SessionTypeNonInteractiveCommands, string(props))
		pk := newPackets()
		ch, _, out := openShell(t, f, sid, doc, datachannel.Config{OnControl: pk.handle})
		waitClosed(t, ch)
		<-out.done
		if got := out.String(); got != tt.out {
			t.Errorf("%s: output = %q, want %q", tt.commands, got, tt.out)
		}
		pk.mu.Lock()
		if len(pk.codes) != 1 || pk.codes[0] != tt.code {
			t.Errorf("%s: exit codes = %v, want [%d]", tt.commands, pk.codes, tt.code)
		}
		pk.mu.Unlock()
	}
}

func TestNonInteractiveCtrlC(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60006"
	doc := docWith(ssmdoc.SessionTypeNonInteractiveCommands, `{"linux":{"commands":"sh -c \"trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done\"",
		"separateOutputStream":true}}`)
	pk := newPackets()
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{OnControl: pk.handle})
	out.waitFor(t, "ready", 10*time.Second)
	if _, err := ch.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "got-int", 10*time.Second)
	waitClosed(t, ch)
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if len(pk.codes) != 1 || pk.codes[0] != 7 {
		t.Errorf("exit codes = %v, want [7]", pk.codes)
	}
}

func TestKMSEncryptedShell(t *testing.T) {
	t.Parallel()
	kms := testutil.NewFakeKMS()
	f := newFakeMGS(t)
	startAgent(t, f, func(c *Config) { c.KeyService = kms })
	sid := "alice-0a1b2c3d4e5f60007"
	doc := shellDoc(wire.SessionInputs{KMSKeyID: "alias/sandbox"})
	ch, info, out := openShell(t, f, sid, doc, datachannel.Config{KeyService: kms, TargetID: instanceID})
	if !info.Encrypted || !strings.Contains(info.CustomerMessage, "KMS") {
		t.Fatalf("session not encrypted: %+v", info)
	}
	if _, err := ch.Write([]byte("echo enc-$((3*3))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "enc-9", 10*time.Second)
	if _, err := ch.Write([]byte("exit\n")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
}

func TestKMSWithoutKeyServiceFails(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60008"
	f.startSession(sid, shellDoc(wire.SessionInputs{KMSKeyID: "alias/sandbox"}), "")
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.FinalTaskStatus != "Failed" || !strings.Contains(tc.Body.Output, "KMS") {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
}

// processGone reports whether pid has exited (a zombie counts as gone: it
// was reparented and only waits for its new parent to reap it).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestChannelClosedKillsShell(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	a := startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60009"
	ch, _, out := openShell(t, f, sid, shellDoc(wire.SessionInputs{}), datachannel.Config{})
	if _, err := ch.Write([]byte("sleep 300 & echo BG=$!; echo PID=$$\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "PID=", 10*time.Second)
	text := out.waitFor(t, "\n", time.Second)
	shell := regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(text)
	bg := regexp.MustCompile(`BG=(\d+)`).FindStringSubmatch(text)
	if shell == nil || bg == nil {
		time.Sleep(100 * time.Millisecond)
		text = out.String()
		shell = regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(text)
		bg = regexp.MustCompile(`BG=(\d+)`).FindStringSubmatch(text)
		if shell == nil || bg == nil {
			t.Fatalf("no pids in %q", text)
		}
	}
	shellPID, _ := strconv.Atoi(shell[1])
	bgPID, _ := strconv.Atoi(bg[1])
	if processGone(shellPID) || processGone(bgPID) {
		t.Fatal("the shell or its job is not running")
	}
	f.closeSession(sid)
	waitGone(t, shellPID, bgPID)
	tc := f.waitTaskComplete(t, 10*time.Second)
	if tc.Body.TaskID != sid || tc.Body.FinalTaskStatus != "Success" {
		t.Fatalf("agent_task_complete = %+v", tc.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(a.Sessions()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sessions still live: %v", a.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sess := f.session(sid)
	sess.waitState(t, time.Second) // Connected
	select {
	case st := <-sess.states:
		t.Errorf("a cancelled session sent %q", st)
	default:
	}
}

func TestDuplicateInteractiveShellIgnored(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	// The agent's decision is the event to wait for: it logs the duplicate it ignores, and only
	// then is "no second CreateDataChannel" a fact rather than "not yet".
	ignored := make(chan struct{})
	var once sync.Once
	a := startAgent(t, f, func(c *Config) {
		logf := c.Logf
		c.Logf = func(format string, args ...any) {
			if strings.Contains(fmt.Sprintf(format, args...), "duplicate interactive_shell ignored") {
				once.Do(func() { close(ignored) })
			}
			if logf != nil {
				logf(format, args...)
			}
		}
	})
	sid := "alice-0a1b2c3d4e5f6000a"
	ch, _, out := openShell(t, f, sid, shellDoc(wire.SessionInputs{}), datachannel.Config{})
	f.startSession(sid, shellDoc(wire.SessionInputs{}), "")
	if _, err := ch.Write([]byte("echo still-$((1+1))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "still-2", 10*time.Second)
	select {
	case <-ignored:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent never handled the duplicate interactive_shell")
	}
	if n := f.dataCreateCount(sid); n != 1 {
		t.Errorf("CreateDataChannel called %d times, want 1", n)
	}
	if got := a.Sessions(); len(got) != 1 || got[0] != sid {
		t.Errorf("Sessions() = %v", got)
	}
	if _, err := ch.Write([]byte("exit\n")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
}

func TestTaskCompleteRetriedUntilAcknowledged(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	f.skipAcks = 1
	startAgent(t, f, func(c *Config) { c.TaskAckTimeout = 200 * time.Millisecond })
	f.startSession("alice-0a1b2c3d4e5f6000b", wire.SessionDocument{SchemaVersion: "1.0", SessionType: "Bogus"}, "")
	first := f.waitTaskComplete(t, 5*time.Second)
	second := f.waitTaskComplete(t, 5*time.Second)
	if first.MessageID != second.MessageID {
		t.Errorf("resend has a new MessageId: %s then %s", first.MessageID, second.MessageID)
	}
	if first.Body.FinalTaskStatus != "Failed" || !strings.Contains(first.Body.Output, "Bogus") {
		t.Errorf("agent_task_complete = %+v", first.Body)
	}
	select {
	case tc := <-f.taskCompletes:
		t.Errorf("sent again after the acknowledgement: %+v", tc)
	case <-time.After(600 * time.Millisecond):
	}
	if n := f.dataCreateCount("alice-0a1b2c3d4e5f6000b"); n != 0 {
		t.Errorf("an unknown session type opened a data channel")
	}
}

func TestTaskCompleteGivesUpAfterThreeAttempts(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	f.skipAcks = 100
	startAgent(t, f, func(c *Config) { c.TaskAckTimeout = 100 * time.Millisecond })
	f.startSession("alice-0a1b2c3d4e5f6000c", wire.SessionDocument{SchemaVersion: "1.0", SessionType: "Bogus"}, "")
	for i := 0; i < 3; i++ {
		f.waitTaskComplete(t, 5*time.Second)
	}
	select {
	case <-f.taskCompletes:
		t.Error("more than 3 attempts")
	case <-time.After(400 * time.Millisecond):
	}
}

func TestControlChannelReconnects(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	a := startAgent(t, f, nil)
	f.mu.Lock()
	ctl := f.ctl
	f.mu.Unlock()
	_ = ctl.Close()
	select {
	case <-f.ctlOpens:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not reconnect")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !a.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("Connected() stays false")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Sessions work over the new control channel.
	sid := "alice-0a1b2c3d4e5f6000d"
	ch, _, out := openShell(t, f, sid, shellDoc(wire.SessionInputs{}), datachannel.Config{})
	if _, err := ch.Write([]byte("echo again-$((5+5))\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "again-10", 10*time.Second)
}

func TestOfflineNeverConnects(t *testing.T) {
	t.Parallel()
	// In a synctest bubble an hour passes at once: an offline agent makes
	// no call in it, whatever the machine's speed.
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			calls.Add(1)
			return nil, errors.New("the offline agent must not call anything")
		})}
		a := New(Config{InstanceID: "i-0ffline", Endpoint: "http://127.0.0.1:9", HTTPClient: hc, Offline: true})
		done := make(chan error, 1)
		go func() { done <- a.Run(context.Background()) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := calls.Load(); n != 0 || a.Connected() {
			t.Errorf("an offline agent made %d calls (connected %v)", n, a.Connected())
		}
		_ = a.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no instance", Config{Endpoint: "http://127.0.0.1:1"}},
		{"three-part version", Config{InstanceID: "i-1", Endpoint: "http://127.0.0.1:1", AgentVersion: "3.3.1"}},
		{"no endpoint", Config{InstanceID: "i-1"}},
		{"ws endpoint", Config{InstanceID: "i-1", Endpoint: "ws://127.0.0.1:1"}},
		{"bad platform", Config{InstanceID: "i-1", Endpoint: "http://127.0.0.1:1", PlatformType: "beos"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.cfg)
			defer a.Close()
			if err := a.Run(context.Background()); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Run = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// transcriptSink records what the agent writes.
type transcriptSink struct {
	mu     sync.Mutex
	meta   []SessionMeta
	data   strings.Builder
	closed atomic.Bool
}

func (s *transcriptSink) Open(_ context.Context, m SessionMeta) (io.WriteCloser, error) {
	s.mu.Lock()
	s.meta = append(s.meta, m)
	s.mu.Unlock()
	return s, nil
}

func (s *transcriptSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.Write(p)
}

func (s *transcriptSink) Close() error { s.closed.Store(true); return nil }

func TestTranscript(t *testing.T) {
	t.Parallel()
	sink := &transcriptSink{}
	f := newFakeMGS(t)
	startAgent(t, f, func(c *Config) { c.Transcripts = sink })
	sid := "alice-0a1b2c3d4e5f6000e"
	doc := shellDoc(wire.SessionInputs{S3BucketName: "logs", S3KeyPrefix: "sessions/", CloudWatchLogGroupName: "/ssm/sessions"})
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	if st := f.session(sid).waitState(t, 5*time.Second); st != wire.SessionStateConnected {
		t.Fatalf("first session state %q", st)
	}
	if _, err := ch.Write([]byte("echo logged-$((7*6))\nexit\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "logged-42", 10*time.Second)
	// The transcript is complete before the session says it is ending:
	// whoever sees the session end (logs --follow) then reads all of it.
	if st := f.session(sid).waitState(t, 10*time.Second); st != wire.SessionStateTerminating {
		t.Fatalf("session state %q, want Terminating", st)
	}
	if !sink.closed.Load() {
		t.Error("the session reported Terminating before its transcript was closed")
	}
	waitClosed(t, ch)
	f.waitTaskComplete(t, 10*time.Second)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.meta) != 1 || sink.meta[0].SessionID != sid || sink.meta[0].InstanceID != instanceID ||
		sink.meta[0].Inputs.S3BucketName != "logs" || sink.meta[0].Inputs.CloudWatchLogGroupName != "/ssm/sessions" {
		t.Fatalf("transcript meta = %+v", sink.meta)
	}
	if !strings.Contains(sink.data.String(), "logged-42") || !sink.closed.Load() {
		t.Errorf("transcript = %q (closed %v)", sink.data.String(), sink.closed.Load())
	}
}

func TestNoTranscriptWithoutDestination(t *testing.T) {
	t.Parallel()
	sink := &transcriptSink{}
	f := newFakeMGS(t)
	startAgent(t, f, func(c *Config) { c.Transcripts = sink })
	sid := "alice-0a1b2c3d4e5f6000f"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"echo x"}}`)
	ch, _, _ := openShell(t, f, sid, doc, datachannel.Config{})
	waitClosed(t, ch)
	f.waitTaskComplete(t, 10*time.Second)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.meta) != 0 {
		t.Errorf("transcript opened without S3 or CloudWatch: %+v", sink.meta)
	}
}

func TestRunAs(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	for _, tc := range []struct {
		name, user, want string
		ok               bool
	}{
		{"existing user", "nobody", "uid=65534", true},
		{"root refused", "root", "root is not allowed", false},
		{"missing user", "no-such-user-ssmkit", "cannot create users", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeMGS(t)
			startAgent(t, f, nil)
			sid := "runas-" + strings.ReplaceAll(tc.name, " ", "-")
			doc := shellDoc(wire.SessionInputs{RunAsEnabled: true, RunAsDefaultUser: tc.user})
			// No Handshake call: a failing session may be closed before it
			// returns. Output is readable either way.
			f.startSession(sid, doc, "")
			ch := f.connectClient(t, sid, datachannel.Config{})
			out := collect(ch)
			if tc.ok {
				if _, err := ch.Write([]byte("echo uid=$(id -u) home=$HOME\nexit\n")); err != nil {
					t.Fatal(err)
				}
			}
			out.waitFor(t, tc.want, 10*time.Second)
			waitClosed(t, ch)
			tcm := f.waitTaskComplete(t, 10*time.Second)
			if got := tcm.Body.FinalTaskStatus == "Success"; got != tc.ok {
				t.Errorf("agent_task_complete = %+v", tcm.Body)
			}
		})
	}
}

func TestInvalidDocumentFails(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	startAgent(t, f, nil)
	for i, doc := range []wire.SessionDocument{
		{SchemaVersion: "2.0", SessionType: ssmdoc.SessionTypeStandardStream},
		docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{}}`),
		docWith(ssmdoc.SessionTypePort, `{"portNumber":"http"}`),
		docWith(ssmdoc.SessionTypeNonInteractiveCommands, `{"linux":{"commands":"true","separateOutputStream":true,"stdOutSeparatorPrefix":"bad prefix!"}}`),
	} {
		sid := fmt.Sprintf("bad-%d", i)
		f.startSession(sid, doc, "")
		tc := f.waitTaskComplete(t, 10*time.Second)
		if tc.Body.TaskID != sid || tc.Body.FinalTaskStatus != "Failed" || tc.Body.Output == "" {
			t.Errorf("document %d: agent_task_complete = %+v", i, tc.Body)
		}
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// TestSessionEndsWithInputInFlight: a command that reads no input from its raw terminal (as
// cp's upload script sets it) while the client keeps sending (an upload cut off mid-way) fills
// the pty; when the service ends the session the agent
// still finishes it and closes cleanly. Before, its write into the full pty blocked for good and
// Agent.Close never returned.
func TestSessionEndsWithInputInFlight(t *testing.T) {
	t.Parallel()
	f := newFakeMGS(t)
	a := startAgent(t, f, nil)
	sid := "alice-0a1b2c3d4e5f60099"
	doc := docWith(ssmdoc.SessionTypeInteractiveCommands, `{"linux":{"commands":"stty raw -echo; echo ready; exec sleep 60"}}`)
	ch, _, out := openShell(t, f, sid, doc, datachannel.Config{})
	out.waitFor(t, "ready", 10*time.Second)
	go func() {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for i := 0; i < 64; i++ { // 2 MiB: far more than a pty holds
			if _, err := ch.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Wait until the agent is stuck: the pty is full, its receive buffer too, so the client's
	// unacknowledged bytes pile up.
	deadline := time.Now().Add(20 * time.Second)
	for ch.Stats().UnackedBytes < 512<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent kept taking input: %+v", ch.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.closeSession(sid)
	f.waitTaskComplete(t, 20*time.Second)
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Agent.Close did not return: a session goroutine is stuck")
	}
}
