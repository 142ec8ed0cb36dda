package e2ebench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
)

// sandboxProc is a `ssmkit sandbox up --foreground` child process: the
// ssmmessages relay and the SSM APIs (moto runs in its own process).
type sandboxProc struct {
	cmd   *exec.Cmd
	dir   string
	env   []string // what `ssmkit sandbox env` exports
	url   string
	agent string // the agent configuration a --tls sandbox writes
	done  chan struct{}
}

// sandboxState is the part of the sandbox's state file the bench reads.
type sandboxState struct {
	URL         string   `json:"url"`
	PID         int      `json:"pid"`
	Env         []string `json:"env"`
	AgentConfig string   `json:"agent_config"`
}

// startSandbox starts a sandbox with no instances of its own: the bench
// runs its agents in separate processes, so the sandbox process's CPU time
// is the relay's.
func startSandbox(ctx context.Context, bin, dir string, tls bool, extraEnv []string, log io.Writer) (*sandboxProc, error) {
	args := []string{"sandbox", "up", "--foreground", "--state-dir", dir, "--instances", "0", "--auto-attach=false"}
	if tls {
		args = append(args, "--tls")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	p := &sandboxProc{cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.After(2 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
		var st sandboxState
		if err == nil && json.Unmarshal(b, &st) == nil && st.PID == cmd.Process.Pid {
			p.env, p.url, p.agent = st.Env, st.URL, st.AgentConfig
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the sandbox exited during start-up (see its log)")
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("the sandbox was not ready within 2 minutes")
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *sandboxProc) pid() int { return p.cmd.Process.Pid }

// stop ends the sandbox with SIGTERM (it stops moto itself) and waits.
func (p *sandboxProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// newNodeID returns a hybrid managed node ID (mi- and 17 hex digits).
func newNodeID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "mi-" + hex.EncodeToString(b[:])[:17]
}

// agentProc is an emulated SSM agent in a child process (this program
// re-executed with AgentArg), connected to the sandbox like a real agent.
type agentProc struct {
	cmd  *exec.Cmd
	id   string
	done chan struct{}
}

// AgentArg is the first argument that makes this program an emulated
// agent child instead of the bench (see RunAgentChild).
const AgentArg = "__agent"

func startAgent(ctx context.Context, endpoint string, env []string, extraEnv []string, log io.Writer) (*agentProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	id := newNodeID()
	cmd := exec.Command(exe, AgentArg, endpoint, id)
	cmd.Env = append(append(os.Environ(), env...), extraEnv...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	_ = stdin // held open: the child stops when it closes (our exit)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the agent: %w", err)
	}
	a := &agentProc{cmd: cmd, id: id, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	line, err := firstLine(ctx, out, 30*time.Second)
	if err == nil && line != "ready" {
		err = fmt.Errorf("agent said %q", line)
	}
	if err != nil {
		a.stop()
		return nil, fmt.Errorf("the emulated agent did not connect: %w", err)
	}
	return a, nil
}

// firstLine returns the first line a child process prints on out, without
// its newline and surrounding space, and then discards the rest of out in
// the background. It gives up after timeout or when ctx ends.
func firstLine(ctx context.Context, out io.Reader, timeout time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		got <- result{strings.TrimSpace(line), err}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case r := <-got:
		return r.line, r.err
	case <-time.After(timeout):
		return "", fmt.Errorf("nothing printed within %s", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

func (a *agentProc) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// RunAgentChild runs an emulated agent for node id against endpoint until
// SIGTERM or until stdin closes, printing "ready" once its control channel
// is up. It is what the bench's agent child process runs.
func RunAgentChild(ctx context.Context, endpoint, id string) error {
	// The sandbox checks the SigV4 signature of the agent's Create*Channel
	// calls: sign with the credentials its environment exports.
	creds := credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	a := agent.New(agent.Config{InstanceID: id, Endpoint: endpoint, Region: os.Getenv("AWS_REGION"), Credentials: creds})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !a.Connected() {
		select {
		case err := <-errc:
			return fmt.Errorf("agent stopped: %w", err)
		case <-tick.C:
		}
	}
	fmt.Println("ready")
	err := <-errc
	_ = a.Close()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
