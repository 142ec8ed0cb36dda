package sessiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/xtaci/smux"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// Banner is the first output of EchoShell: a plain shell has no
// handshake, so the client learns the session type from it (§5.6).
const Banner = "sh-5.2$ "

// OldAgentVersion is an agent too old for smux (basic port mode) and for
// the TerminateSession flag.
const OldAgentVersion = "2.3.700.0"

// DefaultPlugin picks a plugin from the request's document, the way the
// real documents would behave:
//
//   - the default shell document: EchoShell;
//   - AWS-StartInteractiveCommand: EchoShell as InteractiveCommands;
//   - AWS-StartNonInteractiveCommand: Script over the "command" parameter;
//   - the port forwarding documents: MuxPort to host:portNumber (host
//     defaults to 127.0.0.1);
//   - AWS-StartSSHSession: SSH to 127.0.0.1:portNumber.
func DefaultPlugin(in *ssm.StartSessionInput) (Plugin, error) {
	param := func(k string) string {
		if v := in.Parameters[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	host := param("host")
	if host == "" {
		host = "127.0.0.1"
	}
	switch doc := aws.ToString(in.DocumentName); doc {
	case "", ssmdoc.Shell:
		return EchoShell(), nil
	case ssmdoc.InteractiveCommand:
		p := EchoShell()
		p.SessionType = ssmdoc.SessionTypeInteractiveCommands
		return p, nil
	case ssmdoc.NonInteractiveCommand:
		return Script(param("command")), nil
	case ssmdoc.PortForwarding, ssmdoc.PortForwardingToRemoteHost:
		return MuxPort(net.JoinHostPort(host, param("portNumber"))), nil
	case ssmdoc.SSH:
		return SSH(net.JoinHostPort("127.0.0.1", param("portNumber"))), nil
	default:
		return Plugin{}, fmt.Errorf("InvalidDocument: document %s does not exist", doc)
	}
}

// EchoShell is a Standard_Stream shell that echoes its input, as a pty
// with echo on does, and ends when a line reads "exit" or on Ctrl-D at
// the start of a line.
func EchoShell() Plugin {
	return Plugin{
		SessionType: ssmdoc.SessionTypeStandardStream,
		Run: func(ctx context.Context, ch *datachannel.Channel) error {
			if _, err := ch.Write([]byte(Banner)); err != nil {
				return err
			}
			buf := make([]byte, 4096)
			var line []byte
			for {
				n, err := ch.Read(buf)
				if n > 0 {
					if _, werr := ch.Write(buf[:n]); werr != nil {
						return werr
					}
					for _, b := range buf[:n] {
						if b == 0x04 && len(line) == 0 {
							return nil // Ctrl-D on an empty line: end of input
						}
						if b == '\r' || b == '\n' || b == 0x03 {
							if string(line) == "exit" {
								return nil
							}
							line = line[:0]
							continue
						}
						line = append(line, b)
					}
				}
				if err != nil {
					return err
				}
			}
		},
	}
}

// Command is a NonInteractiveCommands session with separate output that
// writes stdout and stderr and exits with code (§7.2).
func Command(stdout, stderr string, code int) Plugin {
	return Plugin{
		SessionType:    ssmdoc.SessionTypeNonInteractiveCommands,
		SeparateOutput: true,
		Run: func(ctx context.Context, ch *datachannel.Channel) error {
			if stdout != "" {
				if _, err := ch.Write([]byte(stdout)); err != nil {
					return err
				}
			}
			if stderr != "" {
				if _, err := ch.WriteStderr([]byte(stderr)); err != nil {
					return err
				}
			}
			return ch.SendExitCode(code)
		},
	}
}

// Script is Command for a tiny command language, so that tests can choose
// the outcome through the command line: statements separated by ";",
// each "echo WORDS" (stdout), "warn WORDS" (stderr) or "exit N".
func Script(command string) Plugin {
	var out, errOut strings.Builder
	code := 0
	for _, stmt := range strings.Split(command, ";") {
		verb, rest, _ := strings.Cut(strings.TrimSpace(stmt), " ")
		switch verb {
		case "echo":
			out.WriteString(rest + "\n")
		case "warn":
			errOut.WriteString(rest + "\n")
		case "exit":
			code, _ = strconv.Atoi(rest)
		case "":
		default:
			errOut.WriteString(verb + ": command not found\n")
			code = 127
		}
	}
	return Command(out.String(), errOut.String(), code)
}

// portProperties builds a Port session's properties (§8.1).
func portProperties(port, typ string) json.RawMessage {
	m := map[string]string{"portNumber": port}
	if typ != "" {
		m["type"] = typ
		m["localPortNumber"] = "0"
	}
	b, _ := json.Marshal(m)
	return b
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "0"
	}
	return p
}

// agentStream presents the agent channel's byte stream to smux.
type agentStream struct{ ch *datachannel.Channel }

func (a agentStream) Read(p []byte) (int, error)  { return a.ch.Read(p) }
func (a agentStream) Write(p []byte) (int, error) { return a.ch.Write(p) }
func (a agentStream) Close() error                { return nil }

// MuxPort is a LocalPortForwarding session served by an smux server that
// dials dest for every stream, as agents above 3.0.196.0 do (§8.4). A
// failed dial sends the ConnectToPortError flag.
func MuxPort(dest string) Plugin {
	return Plugin{
		SessionType: ssmdoc.SessionTypePort,
		Properties:  portProperties(portOf(dest), "LocalPortForwarding"),
		Run: func(ctx context.Context, ch *datachannel.Channel) error {
			client := ch.Info().ClientVersion
			if !version.AgentUsesMux(client) {
				return fmt.Errorf("client version %q is too old for smux", client)
			}
			cfg := smux.DefaultConfig()
			cfg.Version = 1
			cfg.KeepAliveDisabled = version.AgentMuxKeepAliveOff(client)
			mux, err := smux.Server(agentStream{ch}, cfg)
			if err != nil {
				return err
			}
			defer mux.Close()
			go func() {
				select {
				case <-ctx.Done():
				case <-ch.Done():
				}
				mux.Close()
			}()
			for {
				st, err := mux.AcceptStream()
				if err != nil {
					return nil
				}
				go func() {
					defer st.Close()
					d, err := net.DialTimeout("tcp", dest, 5*time.Second)
					if err != nil {
						_ = ch.SendFlag(wire.FlagConnectToPortError)
						return
					}
					defer d.Close()
					done := make(chan struct{})
					go func() {
						_, _ = io.Copy(d, st)
						if tc, ok := d.(*net.TCPConn); ok {
							_ = tc.CloseWrite()
						}
						close(done)
					}()
					_, _ = io.Copy(st, d)
					_ = st.Close()
					<-done
				}()
			}
		},
	}
}

// BasicPort is a LocalPortForwarding session of an agent too old for smux
// (agentVersion, e.g. OldAgentVersion): one destination connection at a
// time, closed by DisconnectToPort and redialled by the next data (§8.3).
func BasicPort(dest, agentVersion string) Plugin {
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	closeConn := func() {
		mu.Lock()
		if conn != nil {
			_ = conn.Close()
			conn = nil
		}
		mu.Unlock()
	}
	return Plugin{
		SessionType:  ssmdoc.SessionTypePort,
		Properties:   portProperties(portOf(dest), "LocalPortForwarding"),
		AgentVersion: agentVersion,
		Control: func(p datachannel.Packet) {
			if p.Type != wire.PayloadFlag {
				return
			}
			if f, err := wire.DecodeFlag(p.Data); err == nil && f == wire.FlagDisconnectToPort {
				closeConn()
			}
		},
		Run: func(ctx context.Context, ch *datachannel.Channel) error {
			defer closeConn()
			go func() {
				<-ctx.Done()
				closeConn()
			}()
			buf := make([]byte, 32<<10)
			for {
				n, err := ch.Read(buf)
				if n > 0 {
					mu.Lock()
					c := conn
					mu.Unlock()
					if c == nil {
						d, derr := net.DialTimeout("tcp", dest, 5*time.Second)
						if derr != nil {
							return fmt.Errorf("dialing %s: %w", dest, derr)
						}
						mu.Lock()
						conn, c = d, d
						mu.Unlock()
						go func() {
							// Destination → client until it closes; then
							// wait for the client's next data (§8.3).
							_, _ = io.Copy(agentStream{ch}, d)
							mu.Lock()
							if conn == d {
								conn = nil
							}
							mu.Unlock()
							_ = d.Close()
						}()
					}
					_, _ = c.Write(buf[:n])
				}
				if err != nil {
					return nil
				}
			}
		},
	}
}

// SSH is an AWS-StartSSHSession session: standard-stream port mode that
// dials dest (sshd) once and ends when dest closes (§8.6).
//
// The real agent writes a message to sshd before acknowledging it, so
// whatever the client saw acknowledged has reached sshd even when the
// TerminateSession flag follows at once. This double acknowledges on
// receipt instead, so it must not close the sshd connection when the
// session is cancelled: the bytes acknowledged before the flag still sit in
// the channel. The copy towards sshd closes the connection itself once the
// channel has ended and it has written everything received.
func SSH(dest string) Plugin {
	return Plugin{
		SessionType: ssmdoc.SessionTypePort,
		Properties:  portProperties(portOf(dest), ""),
		Run: func(ctx context.Context, ch *datachannel.Channel) error {
			d, err := net.DialTimeout("tcp", dest, 5*time.Second)
			if err != nil {
				return fmt.Errorf("dialing %s: %w", dest, err)
			}
			go func() {
				// Read returns what was received before the channel
				// ended, then io.EOF.
				_, _ = io.Copy(d, agentStream{ch})
				_ = d.Close()
			}()
			fromSSHD := make(chan error, 1)
			go func() {
				_, err := io.Copy(agentStream{ch}, d)
				fromSSHD <- err
			}()
			select {
			case err := <-fromSSHD:
				if errors.Is(err, net.ErrClosed) || errors.Is(err, datachannel.ErrClosed) {
					return nil
				}
				return err
			case <-ctx.Done():
				return nil
			}
		},
	}
}

// EchoServer starts a loopback TCP server that echoes every connection
// and returns its address; tb.Cleanup stops it.
func EchoServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("echo server: %v", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a loopback address that refuses connections.
func ClosedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("closed port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
