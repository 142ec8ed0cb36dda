package e2ebench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/ssmkit/ssmkit/internal/testutil"
)

// forwarder is one running port forward: `ssmkit forward` or the AWS CLI
// driving session-manager-plugin.
type forwarder interface {
	// addr is the local address to connect to.
	addr() string
	// stop ends the forward and returns the client's usage over its whole
	// life and its data-channel counters (nil when unknown).
	stop() (usage, *channelStats, error)
	// dump ends a stalled client with SIGABRT, which makes a Go program
	// print every goroutine's stack, and returns all it printed. (Not
	// SIGQUIT: session-manager-plugin catches it and exits quietly.)
	dump() string
}

// quitWait bounds how long dump waits for a client to print its stacks and
// exit.
const quitWait = 10 * time.Second

// channelStats are the counters ssmkit logs under --debug when a session
// closes.
type channelStats struct {
	Sent, Resent, Received, Duplicates int64
}

var statsRE = regexp.MustCompile(`sent (\d+) messages \((\d+) resent\), received (\d+) \((\d+) duplicates\)`)

func parseStats(log string) *channelStats {
	m := statsRE.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		return nil
	}
	last := m[len(m)-1]
	n := func(i int) int64 { v, _ := strconv.ParseInt(last[i], 10, 64); return v }
	return &channelStats{Sent: n(1), Resent: n(2), Received: n(3), Duplicates: n(4)}
}

// ssmkitForward is `ssmkit forward <target> 0:<port> --json --debug`.
type ssmkitForward struct {
	cmd    *exec.Cmd
	local  string
	start  time.Time
	stderr *testutil.SyncBuffer
	done   chan struct{}
}

func startSSMKitForward(ctx context.Context, bin string, env []string, target string, port int) (*ssmkitForward, error) {
	cmd := exec.Command(bin, "forward", target, "0:"+strconv.Itoa(port), "--json", "--debug")
	cmd.Env = env
	f := &ssmkitForward{cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = f.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ssmkit forward: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var buf strings.Builder
		for sc.Scan() {
			buf.WriteString(sc.Text())
			var r struct {
				LocalAddress string `json:"local_address"`
			}
			if json.Unmarshal([]byte(buf.String()), &r) == nil && r.LocalAddress != "" {
				ready <- r.LocalAddress
				buf.Reset()
			}
		}
		close(ready)
	}()
	go func() { _ = cmd.Wait(); close(f.done) }()
	select {
	case a, ok := <-ready:
		if !ok {
			<-f.done
			return nil, fmt.Errorf("ssmkit forward exited before it was ready: %s", lastLines(f.stderr.String(), 5))
		}
		f.local = a
		return f, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-f.done
		return nil, fmt.Errorf("ssmkit forward not ready within 60 s: %s", lastLines(f.stderr.String(), 5))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-f.done
		return nil, ctx.Err()
	}
}

func (f *ssmkitForward) addr() string { return f.local }

func (f *ssmkitForward) stop() (usage, *channelStats, error) {
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
		return usage{}, nil, fmt.Errorf("ssmkit forward did not stop on SIGINT")
	}
	u := processUsage(f.cmd, time.Since(f.start))
	if code := f.cmd.ProcessState.ExitCode(); code != 0 {
		return u, nil, fmt.Errorf("ssmkit forward exited %d: %s", code, lastLines(f.stderr.String(), 5))
	}
	return u, parseStats(f.stderr.String()), nil
}

func (f *ssmkitForward) dump() string {
	_ = f.cmd.Process.Signal(syscall.SIGABRT)
	select {
	case <-f.done:
	case <-time.After(quitWait):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
	return f.stderr.String()
}

// pluginForward is `aws ssm start-session` with
// AWS-StartPortForwardingSession, which runs session-manager-plugin.
type pluginForward struct {
	cmd    *exec.Cmd
	tty    *os.File
	local  string
	plugin int // the plugin's pid
	start  time.Time
	output *testutil.SyncBuffer
	done   chan struct{}
	copied chan struct{} // closed when the pty's output has all been read
}

// pluginName is the official client's executable name.
const pluginName = "session-manager-plugin"

func startPluginForward(ctx context.Context, env []string, target string, port, localPort int) (*pluginForward, error) {
	params := fmt.Sprintf(`{"portNumber":["%d"],"localPortNumber":["%d"]}`, port, localPort)
	cmd := exec.Command("aws", "ssm", "start-session", "--target", target,
		"--document-name", "AWS-StartPortForwardingSession", "--parameters", params)
	cmd.Env = env
	f := &pluginForward{cmd: cmd, output: &testutil.SyncBuffer{}, done: make(chan struct{}),
		copied: make(chan struct{}), local: "127.0.0.1:" + strconv.Itoa(localPort)}
	f.start = time.Now()
	// The plugin gives up when its standard input is at end of file.
	tty, err := pty.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting aws ssm start-session: %w", err)
	}
	f.tty = tty
	go func() { _, _ = io.Copy(f.output, tty); close(f.copied) }()
	go func() { _ = cmd.Wait(); close(f.done) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(f.output.String(), "Waiting for connections") {
		select {
		case <-f.done:
			return nil, fmt.Errorf("aws ssm start-session exited: %s", lastLines(f.output.String(), 5))
		case <-deadline:
			f.kill()
			return nil, fmt.Errorf("the plugin was not ready within 60 s: %s", lastLines(f.output.String(), 5))
		case <-ctx.Done():
			f.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.plugin = childNamed(cmd.Process.Pid, pluginName)
	if f.plugin == 0 {
		f.kill()
		return nil, fmt.Errorf("no %s process under the AWS CLI", pluginName)
	}
	return f, nil
}

func (f *pluginForward) addr() string { return f.local }

func (f *pluginForward) kill() {
	_ = f.cmd.Process.Kill()
	if f.plugin != 0 {
		_ = syscall.Kill(f.plugin, syscall.SIGKILL)
	}
	<-f.done
	_ = f.tty.Close()
}

func (f *pluginForward) dump() string {
	if f.plugin != 0 {
		_ = syscall.Kill(f.plugin, syscall.SIGABRT)
		// The AWS CLI exits when its plugin does; the pty keeps what the
		// plugin printed until the copier has read it.
		select {
		case <-f.done:
		case <-time.After(quitWait):
		}
	}
	_ = f.cmd.Process.Kill()
	<-f.done
	select {
	case <-f.copied:
	case <-time.After(quitWait):
	}
	f.kill()
	return f.output.String()
}

// stop reads the plugin's CPU time and peak RSS from /proc while it still
// runs (the AWS CLI is its parent, so its rusage is not ours to wait for),
// then stops it the way a user does: SIGINT to the plugin.
func (f *pluginForward) stop() (usage, *channelStats, error) {
	cpu, err1 := procCPU(f.plugin)
	rss, err2 := procPeakRSS(f.plugin)
	u := usage{CPU: cpu, PeakRSS: rss, Wall: time.Since(f.start)}
	_ = syscall.Kill(f.plugin, syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.kill()
	}
	_ = f.tty.Close()
	if err1 != nil || err2 != nil {
		return u, nil, fmt.Errorf("reading the plugin's usage: %v %v", err1, err2)
	}
	return u, nil, nil
}

// timeCommand runs cmd and returns the time from start to exit. A pty is
// its terminal when tty is set (the plugin insists on one).
func timeCommand(cmd *exec.Cmd, tty bool) (time.Duration, string, error) {
	var out testutil.SyncBuffer
	start := time.Now()
	if tty {
		f, err := pty.Start(cmd)
		if err != nil {
			return 0, "", err
		}
		defer f.Close()
		copied := make(chan struct{})
		go func() { _, _ = io.Copy(&out, f); close(copied) }()
		err = cmd.Wait()
		el := time.Since(start)
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		return el, out.String(), err
	}
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return time.Since(start), out.String(), err
}

// firstShellByte starts an interactive shell on a pty and returns the time
// from process start to the first byte of the shell's own output; skip
// reports whether a byte is still part of the client's banner. It then
// types exit and waits for the client to end.
func firstShellByte(cmd *exec.Cmd, skip func(seen []byte) bool) (time.Duration, error) {
	start := time.Now()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 120, Rows: 40})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	first := make(chan time.Duration, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 4096)
		sent := false
		for {
			n, err := f.Read(buf)
			for i := 0; i < n && !sent; i++ {
				seen = append(seen, buf[i])
				if !skip(seen) {
					first <- time.Since(start)
					sent = true
				}
			}
			if err != nil {
				if !sent {
					close(first)
				}
				return
			}
		}
	}()
	var el time.Duration
	select {
	case d, ok := <-first:
		if !ok {
			return 0, fmt.Errorf("the shell printed nothing")
		}
		el = d
	case <-done:
		return 0, fmt.Errorf("the client exited before the shell printed anything")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return 0, fmt.Errorf("no shell output within 60 s")
	}
	_, _ = f.Write([]byte("exit\r"))
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return el, fmt.Errorf("the client did not exit after the shell did")
	}
	return el, nil
}

// skipNothing: every byte on the pty is the shell's (ssmkit prints its
// banner on stderr, which is not the pty).
func skipNothing([]byte) bool { return false }

// skipPluginBanner skips the plugin's "Starting session with SessionId: …"
// line and the blank line before it.
func skipPluginBanner(seen []byte) bool {
	s := string(seen)
	trimmed := strings.TrimLeft(s, "\r\n")
	if trimmed == "" {
		return true
	}
	const banner = "Starting session with SessionId"
	if strings.HasPrefix(banner, trimmed) {
		return true
	}
	if strings.HasPrefix(trimmed, banner) {
		// Inside the banner line until its newline, and the newlines after.
		i := strings.IndexAny(trimmed, "\r\n")
		if i < 0 {
			return true
		}
		return strings.TrimLeft(trimmed[i:], "\r\n") == ""
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
