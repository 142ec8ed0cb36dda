package e2ebench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// RelayArg is the first argument that makes this program a TCP relay
// child of the relay chain (see RunRelayChild).
const RelayArg = "__relay"

// The relay chain is the session path's topology without its protocol:
// the bench's client → relay → relay → relay → the traffic server, three
// processes in the places of ssmkit, the sandbox's relay and the agent,
// each copying every byte through user space with 32 KiB reads and
// writes. What it moves is what any implementation of that topology could
// move on this machine at most: four loopback hops instead of raw TCP's
// one, and three processes sharing the cores.
const chainLen = 3

// relayBuffer is each chain relay's copy buffer: the session path's
// message size.
const relayBuffer = 32 << 10

// RunRelayChild relays every connection accepted on a new loopback port to
// target, printing "ready PORT" once it listens, until ctx ends or stdin
// closes. It is what the bench's relay chain children run.
func RunRelayChild(ctx context.Context, target string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	fmt.Printf("ready %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go relayConn(c.(*net.TCPConn), target)
	}
}

// relayConn copies both ways between c and a new connection to target,
// passing each side's half-close on.
func relayConn(c *net.TCPConn, target string) {
	defer c.Close()
	d, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	u := d.(*net.TCPConn)
	defer u.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		relayCopy(u, c)
	}()
	relayCopy(c, u)
	<-done
}

// relayCopy copies src to dst through a user-space buffer (hiding
// ReaderFrom and WriterTo, which would splice in the kernel) and then
// half-closes dst.
func relayCopy(dst, src *net.TCPConn) {
	_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, relayBuffer))
	_ = dst.CloseWrite()
}

// relayChain is the running chain: front is the address the client
// connects to.
type relayChain struct {
	front string
	procs []*exec.Cmd
}

// startRelayChain starts the chain in front of target, from the server's
// end. The relay in the client's place runs with the default GOMAXPROCS,
// the others with peerEnv, as the sandbox's relay and the agent do.
func startRelayChain(ctx context.Context, target string, peerEnv []string) (*relayChain, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ch := &relayChain{}
	next := target
	for i := range chainLen {
		cmd := exec.Command(exe, RelayArg, next)
		cmd.Env = os.Environ()
		if i < chainLen-1 {
			cmd.Env = append(cmd.Env, peerEnv...)
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			ch.stop()
			return nil, err
		}
		if _, err := cmd.StdinPipe(); err != nil { // held open: the child stops when it closes
			ch.stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			ch.stop()
			return nil, fmt.Errorf("starting a chain relay: %w", err)
		}
		ch.procs = append(ch.procs, cmd)
		line, err := firstLine(ctx, out, 10*time.Second)
		port, ok := strings.CutPrefix(line, "ready ")
		if err != nil || !ok {
			ch.stop()
			return nil, fmt.Errorf("a chain relay did not start (it said %q): %v", line, err)
		}
		next = "127.0.0.1:" + port
	}
	ch.front = next
	return ch, nil
}

// stop ends every relay of the chain and waits for it.
func (ch *relayChain) stop() {
	for _, p := range ch.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
}
