package plugin_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/creack/pty"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// cliEnv is the AWS CLI, a sandbox and a PATH whose first directory holds
// the session-manager-plugin link to a freshly built ssmkit.
type cliEnv struct {
	aws    string
	sb     *sandbox.Sandbox
	env    []string
	target string
	bin    string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds ssmkit, starts moto and the sandbox, runs the AWS CLI")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		testutil.MissingTool(t, "the AWS CLI (aws) is not installed; %s", testutil.InstallAWSCLI)
	}
	dir := t.TempDir()
	bin := testutil.BuildSSMKit(t, dir)
	linkDir := filepath.Join(dir, "path")
	// What a user runs: the install command puts the link on PATH.
	out, err := exec.Command(bin, "plugin", "install", "--dir", linkDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Linked "+filepath.Join(linkDir, "session-manager-plugin")) {
		t.Fatalf("ssmkit plugin install: %v\n%s", err, out)
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "cli-1"}}})
	env := append(os.Environ(), sb.Env()...)
	env = append(env, "PATH="+linkDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "TERM=dumb")
	return &cliEnv{aws: awsBin, sb: sb, env: env, target: sb.Instances()[0].ID, bin: bin}
}

// command is `aws ssm start-session --target <node> args…` against the
// sandbox, in its own process group (the CLI ignores SIGINT; the test
// interrupts the plugin through the group, as a terminal would).
func (e *cliEnv) command(ctx context.Context, args ...string) *exec.Cmd {
	all := append([]string{"--endpoint-url", e.sb.URL(), "--region", e.sb.Region(), "ssm", "start-session", "--target", e.target}, args...)
	cmd := exec.CommandContext(ctx, e.aws, all...)
	cmd.Env = e.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// exitCode waits for cmd and returns its exit status.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return 0
}

// step is one exchange on the terminal: wait until the screen shows
// wait (from the screen's offset after the previous step), then resize the
// terminal if asked, then type send.
type step struct {
	wait       string
	cols, rows uint16
	send       string
}

// onPTY runs the CLI on a pseudo-terminal, types input once prompt shows
// (empty: at once) and returns everything the terminal showed and the exit
// status.
func (e *cliEnv) onPTY(t *testing.T, prompt, input string, args ...string) (string, int) {
	t.Helper()
	return e.steps(t, []step{{wait: prompt, send: input}}, args...)
}

// steps runs the CLI on a pseudo-terminal through steps.
func (e *cliEnv) steps(t *testing.T, steps []step, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.command(ctx, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
	if err != nil {
		t.Fatalf("starting the AWS CLI on a pty: %v", err)
	}
	defer ptmx.Close()
	var screen testutil.SyncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&screen, ptmx); close(copied) }()
	for _, st := range steps {
		if st.wait != "" {
			screen.WaitFor(t, st.wait, 30*time.Second)
		}
		if st.cols != 0 {
			if err := pty.Setsize(ptmx, &pty.Winsize{Cols: st.cols, Rows: st.rows}); err != nil {
				t.Fatal(err)
			}
		}
		if st.send != "" {
			if _, err := ptmx.WriteString(st.send); err != nil {
				t.Fatal(err)
			}
		}
	}
	code := exitCode(t, cmd)
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	return screen.String(), code
}

// piped runs the CLI with stdin from in and returns stdout, stderr and the
// exit status.
func (e *cliEnv) piped(t *testing.T, in io.Reader, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.command(ctx, args...)
	var stdout, stderr testutil.SyncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, cmd)
	return stdout.String(), stderr.String(), code
}

// started is what the plugin prints once the CLI has handed it a session.
const started = "Starting session with SessionId: "

var portOpenedRE = regexp.MustCompile(`Port (\d+) opened for sessionId (\S+)\.`)

// forwardThroughCLI runs a port-forwarding document, echoes through it,
// interrupts the plugin and checks the official plugin's messages.
func (e *cliEnv) forwardThroughCLI(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.command(ctx, args...)
	var stdout, stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdout.WaitFor(t, "\nWaiting for connections...\n", 30*time.Second)
	m := portOpenedRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no port line: %q", stdout.String())
	}
	for i := range 2 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", m[1]))
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("ping-%d\n", i)
		fmt.Fprint(c, msg)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || line != msg {
			t.Fatalf("echo %d = %q, %v; stderr %s", i, line, err, stderr.String())
		}
	}
	// Ctrl-C as a terminal sends it: to the whole process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("exit status %d; stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
	want := fmt.Sprintf("Port %s opened for sessionId %s.\nWaiting for connections...\n\nConnection accepted for session [%s]\n\n\nExiting session with sessionId: %s.\n\n", m[1], m[2], m[2], m[2])
	if !strings.HasSuffix(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to end with %q", stdout.String(), want)
	}
}

// TestAWSCLIWithSSMKitAsPlugin runs the real AWS CLI with ssmkit as its
// session-manager-plugin for every AWS-owned session document against the
// sandbox, including a KMS-encrypted shell, and checks output and exit
// status; no session is left behind.
func TestAWSCLIWithSSMKitAsPlugin(t *testing.T) {
	e := newCLIEnv(t)

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(filepath.Dir(e.bin), "path", "session-manager-plugin"), "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "1.2.677.0" {
			t.Fatalf("--version = %q, %v", out, err)
		}
	})

	t.Run("shell", func(t *testing.T) {
		// The size reaches the remote terminal and follows a resize; Ctrl-C
		// interrupts the remote command, not the session.
		screen, code := e.steps(t, []step{
			{wait: started, send: "stty size; echo hello-$((6*7))\r"},
			{wait: "hello-42", cols: 132, rows: 50},
			{send: "stty size; echo resized-$((1+1))\r"},
			{wait: "resized-2", send: "echo sleep-$((3*3)); sleep 30; echo slept\r"},
			{wait: "sleep-9", send: "\x03"},
			{wait: "^C", send: "echo after-$((2+2)); exit\r"},
		})
		if code != 0 || !strings.Contains(screen, "40 120") || !strings.Contains(screen, "50 132") ||
			!strings.Contains(screen, "after-4") || strings.Contains(screen, "\nslept\r\n") ||
			!strings.Contains(screen, "Exiting session with sessionId: ") {
			t.Fatalf("exit %d, screen:\n%q", code, screen)
		}
	})

	t.Run("AWS-StartInteractiveCommand", func(t *testing.T) {
		screen, code := e.onPTY(t, "", "", "--document-name", "AWS-StartInteractiveCommand",
			"--parameters", `command=["printf 'inter-%s\n' $((2+3)); tty"]`)
		if code != 0 || !strings.Contains(screen, "inter-5") || !strings.Contains(screen, "/dev/") {
			t.Fatalf("exit %d, screen:\n%s", code, screen)
		}
	})

	t.Run("AWS-StartNonInteractiveCommand separate streams", func(t *testing.T) {
		stdout, stderr, code := e.piped(t, nil, "--document-name", "AWS-StartNonInteractiveCommand",
			"--parameters", `{"command":["sh -c 'echo out-1; echo err-1 >&2; exit 7'"],"separateOutputStream":["true"]}`)
		// The plugin exits 7; the AWS CLI turns any failing plugin into its
		// own status 255 and says which status the plugin had.
		if code != 255 || !strings.Contains(stderr, "returned non-zero exit status 7") ||
			!strings.Contains(stdout, "out-1\n") || strings.Contains(stdout, "err-1") ||
			!strings.HasPrefix(stderr, "err-1\n") || strings.Contains(stdout+stderr, "EXIT_CODE") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
		}
	})

	t.Run("plugin arguments without the CLI", func(t *testing.T) {
		// The same hand-off the CLI makes, by both names and in both forms
		// of argument 1: the response itself (old CLIs) or the name of the
		// variable that holds it.
		ssmc := ssm.NewFromConfig(e.sb.AWSConfig())
		link := filepath.Join(filepath.Dir(e.bin), "path", "session-manager-plugin")
		for i, form := range []struct {
			argv0 []string
			env   bool
		}{{argv0: []string{link}}, {argv0: []string{e.bin, "plugin"}, env: true}, {argv0: []string{link}, env: true}} {
			req := fmt.Sprintf(`{"Target":%q,"DocumentName":"AWS-StartNonInteractiveCommand","Parameters":{"command":["sh -c 'echo direct-%d; exit 9'"],"separateOutputStream":["true"]}}`, e.target, i)
			out, err := ssmc.StartSession(context.Background(), &ssm.StartSessionInput{Target: aws.String(e.target),
				DocumentName: aws.String("AWS-StartNonInteractiveCommand"),
				Parameters:   map[string][]string{"command": {fmt.Sprintf("sh -c 'echo direct-%d; exit 9'", i)}, "separateOutputStream": {"true"}}})
			if err != nil {
				t.Fatal(err)
			}
			resp := fmt.Sprintf(`{"SessionId":%q,"TokenValue":%q,"StreamUrl":%q}`, aws.ToString(out.SessionId), aws.ToString(out.TokenValue), aws.ToString(out.StreamUrl))
			arg1, env := resp, e.env
			if form.env {
				arg1, env = "AWS_SSM_START_SESSION_RESPONSE", append(env[:len(env):len(env)], "AWS_SSM_START_SESSION_RESPONSE="+resp)
			}
			args := append(form.argv0[1:], arg1, e.sb.Region(), "StartSession", "", req, e.sb.URL())
			cmd := exec.Command(form.argv0[0], args...)
			cmd.Env = env
			var stdout, stderr testutil.SyncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd); code != 9 || !strings.Contains(stdout.String(), fmt.Sprintf("direct-%d\n", i)) {
				t.Fatalf("%v: exit %d, stdout %q, stderr %q", form, code, stdout.String(), stderr.String())
			}
		}
	})

	t.Run("AWS-StartNonInteractiveCommand merged", func(t *testing.T) {
		stdout, stderr, code := e.piped(t, nil, "--document-name", "AWS-StartNonInteractiveCommand",
			"--parameters", `{"command":["sh -c 'echo out-2; echo err-2 >&2; exit 3'"]}`)
		// Without separate streams the agent reports no exit status.
		if code != 0 || !strings.Contains(stdout, "out-2") || !strings.Contains(stdout, "err-2") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
		}
	})

	echo := sessiontest.EchoServer(t)
	_, echoPort, _ := net.SplitHostPort(echo)

	t.Run("AWS-StartPortForwardingSession", func(t *testing.T) {
		e.forwardThroughCLI(t, "--document-name", "AWS-StartPortForwardingSession",
			"--parameters", "portNumber="+echoPort+",localPortNumber=0")
	})

	t.Run("AWS-StartPortForwardingSessionToRemoteHost", func(t *testing.T) {
		e.forwardThroughCLI(t, "--document-name", "AWS-StartPortForwardingSessionToRemoteHost",
			"--parameters", "host=localhost,portNumber="+echoPort+",localPortNumber=0")
	})

	t.Run("AWS-StartSSHSession", func(t *testing.T) {
		sshd := fakeSSHD(t)
		_, port, _ := net.SplitHostPort(sshd.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := e.command(ctx, "--document-name", "AWS-StartSSHSession", "--parameters", "portNumber="+port)
		pr, pw := io.Pipe()
		var stdout, stderr testutil.SyncBuffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(pw, "SSH-2.0-client\r\n")
		// Both greetings crossed; then ssh would end: stdin closes and
		// the sshd hangs up.
		stdout.WaitFor(t, "SSH-2.0-fake\r\n", 30*time.Second)
		<-sshd.read
		close(sshd.release)
		pw.Close()
		if code := exitCode(t, cmd); code != 0 || stdout.String() != "SSH-2.0-fake\r\n" || sshd.got() != "SSH-2.0-client\r\n" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q\nsshd read %q", code, stdout.String(), stderr.String(), sshd.got())
		}
		if !strings.Contains(stderr.String(), "Starting session with SessionId") {
			t.Errorf("stderr %q", stderr.String())
		}
	})

	t.Run("KMS shell", func(t *testing.T) {
		ctx := context.Background()
		cfg := e.sb.AWSConfig()
		key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		prefs := fmt.Sprintf(`{"schemaVersion":"1.0","description":"kms","sessionType":"Standard_Stream","inputs":{
			"s3BucketName":"","s3KeyPrefix":"","s3EncryptionEnabled":false,"cloudWatchLogGroupName":"",
			"cloudWatchEncryptionEnabled":false,"cloudWatchStreamingEnabled":false,"kmsKeyId":%q,
			"runAsEnabled":false,"runAsDefaultUser":"","idleSessionTimeout":"20","maxSessionDuration":"",
			"shellProfile":{"linux":"","windows":""}}}`, aws.ToString(key.KeyMetadata.KeyId))
		if _, err := ssm.NewFromConfig(cfg).CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("SSM-SessionManagerRunShell"),
			DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson, Content: aws.String(prefs)}); err != nil {
			t.Fatal(err)
		}
		screen, code := e.onPTY(t, started, "echo secret-$((6*7)); exit\r")
		if code != 0 || !strings.Contains(screen, "This session is encrypted using AWS KMS.") || !strings.Contains(screen, "secret-42") {
			t.Fatalf("exit %d, screen:\n%s", code, screen)
		}
	})

	sandboxtest.NoActiveSessions(t, e.sb)
}

// sshd is a stand-in sshd: it greets, reads one line, and closes once
// released.
type sshd struct {
	addr    string
	read    chan struct{} // closed once the client's line is in
	release chan struct{} // close to let it hang up
	mu      sync.Mutex
	line    string
}

func (s *sshd) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.line
}

func fakeSSHD(t *testing.T) *sshd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &sshd{addr: ln.Addr().String(), read: make(chan struct{}), release: make(chan struct{})}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "SSH-2.0-fake\r\n")
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		s.mu.Lock()
		s.line = line
		s.mu.Unlock()
		close(s.read)
		<-s.release
	}()
	return s
}
