// Package forward implements `ssmkit forward`: forward a local TCP port
// to a port on, or reachable from, a managed node.
package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// ForwardOptions are the inputs of `ssmkit forward`.
type ForwardOptions struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Target is the target argument and --pick-one.
	Target cmdutil.Target
	// Specs are the forwards, at least one.
	Specs []Spec
	// Host is --host: the destination of specs that name none; empty
	// means the target itself.
	Host string
	// Reconnect is --reconnect: start a new session when the service ends
	// one (idle timeout, maximum duration), keeping the local listeners.
	Reconnect bool
	// JSON is --json (or --output json): print one JSON object per
	// listening address once ready.
	JSON bool
	// Reason is --reason.
	Reason string
}

// ready is what --json prints, one line per listening address.
type ready struct {
	LocalAddress string `json:"local_address"`
	Remote       string `json:"remote"`
	SessionID    string `json:"session_id"`
}

// NewCmdForward returns the `forward` command. runF replaces the run
// function in tests.
func NewCmdForward(f *cmdutil.Factory, runF func(*ForwardOptions) error) *cobra.Command {
	opts := &ForwardOptions{IO: f.IOStreams, Clients: f.SessionClients}
	cmd := &cobra.Command{
		Use:   "forward <target> <forward>...",
		Short: "Forward local ports to ports on or behind a managed node",
		Long: "Forward local TCP ports or Unix sockets through Session Manager to ports on the managed\n" +
			"node, or to hosts reachable from it (a database endpoint, say), resolved on the node.\n\n" +
			"Each <forward> is one of:\n" +
			"  [bind:]local-port:remote-port            to the node itself (or --host)\n" +
			"  [bind:]local-port:host:remote-port       to host, as ssh -L writes it\n" +
			"  /path/to.sock:[host:]remote-port         a Unix socket as the local end\n\n" +
			"The bind address defaults to 127.0.0.1; 0.0.0.0 listens on IPv4 only, [::] on IPv6 only,\n" +
			"localhost on 127.0.0.1 and ::1. A local port of 0 picks a free one; the addresses are\n" +
			"printed on stderr, or as JSON lines on stdout with --json.\n\n" +
			"Forwards to the same destination share one session, multiplexing every connection;\n" +
			"each other destination gets its own session (Session Manager binds a session to one\n" +
			"host and port). With --reconnect, a session the service ends (idle timeout, maximum\n" +
			"duration) is replaced by a new one on the same local ports. Press Ctrl-C to stop.\n\n" +
			cmdutil.TargetHelp,
		Example: "  ssmkit forward i-0123456789abcdef0 8080:80\n" +
			"  ssmkit forward bastion 0:5432 --host db.internal.example.com --json\n" +
			"  ssmkit forward bastion 5432:db.internal:5432 6379:cache.internal:6379 --reconnect\n" +
			"  ssmkit forward web-1 0.0.0.0:9000:9000 /tmp/web.sock:80",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target.Arg = args[0]
			opts.Specs = nil
			for _, a := range args[1:] {
				sp, err := ParseSpec(a)
				if err != nil {
					return cmdutil.FlagErrorWrap(err)
				}
				opts.Specs = append(opts.Specs, sp)
			}
			if f.Options.JSON() {
				opts.JSON = true
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return forwardRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Host, "host", "", "Forward to this host as the target resolves it (AWS-StartPortForwardingSessionToRemoteHost)")
	cmd.Flags().BoolVar(&opts.Reconnect, "reconnect", false, "Start a new session when the service ends one (idle timeout), keeping the local ports")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print {\"local_address\",\"remote\",\"session_id\"} per address as JSON lines once ready")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "Reason for the session, recorded by Session Manager")
	opts.Target.AddFlags(cmd)
	return cmd
}

// group is the forwards to one destination: one session serves them.
type group struct {
	host  string
	port  int
	specs []Spec
	hub   *hub
}

func (g *group) remote(target string) string {
	h := g.host
	if h == "" {
		h = target
	}
	return net.JoinHostPort(h, strconv.Itoa(g.port))
}

func forwardRun(ctx context.Context, opts *ForwardOptions) error {
	// Listen first: a busy port fails before any session exists.
	var groups []*group
	defer func() {
		for _, g := range groups {
			if g.hub != nil {
				g.hub.close()
			}
		}
	}()
	byDest := map[string]*group{}
	lns := map[*group][]net.Listener{}
	for _, sp := range opts.Specs {
		if sp.Host == "" {
			sp.Host = opts.Host
		}
		key := net.JoinHostPort(sp.Host, strconv.Itoa(sp.RemotePort))
		g := byDest[key]
		if g == nil {
			g = &group{host: sp.Host, port: sp.RemotePort}
			byDest[key] = g
			groups = append(groups, g)
		}
		l, err := sp.listen()
		if err != nil {
			for _, ls := range lns {
				for _, ln := range ls {
					ln.Close()
				}
			}
			return err
		}
		g.specs = append(g.specs, sp)
		lns[g] = append(lns[g], l...)
	}
	for _, g := range groups {
		g.hub = newHub(lns[g])
	}
	clients, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	id, err := opts.Target.Resolve(ctx, opts.IO, clients, opts.Logf)
	if err != nil {
		return err
	}
	// One goroutine per destination; the first to end (an error, or a
	// session the service ended without --reconnect) ends them all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		out      = &lockedWriter{w: opts.IO.Out}
	)
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := serve(ctx, opts, clients, id, g, out)
			mu.Lock()
			if firstErr == nil && err != nil {
				firstErr = err
			}
			mu.Unlock()
			cancel()
		}()
	}
	wg.Wait()
	return firstErr
}

// serve runs sessions for one destination until ctx ends, or the service
// ends one and --reconnect is off.
func serve(ctx context.Context, opts *ForwardOptions, clients session.Clients, id string, g *group, out io.Writer) error {
	localPort := 0
	for _, sp := range g.specs {
		if sp.Socket == "" {
			localPort = sp.LocalPort
			for _, ln := range g.hub.lns {
				if a, ok := ln.Addr().(*net.TCPAddr); ok {
					localPort = a.Port
					break
				}
			}
			break
		}
	}
	for attempt := 0; ; attempt++ {
		req := session.PortForwardRequest(id, g.port, localPort, g.host)
		req.Reason = opts.Reason
		s, err := session.OpenTarget(ctx, clients, req, session.Options{Logf: opts.Logf})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var printErr error
		err = session.Forward(ctx, s, session.ForwardOptions{
			Listener: g.hub.view(),
			Stderr:   opts.IO.ErrOut,
			OnReady: func(net.Addr) {
				remote := g.remote(s.Target())
				for _, ln := range g.hub.lns {
					fmt.Fprintf(opts.IO.ErrOut, "Forwarding %s → %s (%s)\n", ln.Addr(), remote, s.ID())
					if opts.JSON && printErr == nil {
						printErr = printJSON(out, ready{LocalAddress: ln.Addr().String(), Remote: remote, SessionID: s.ID()})
					}
				}
			},
		})
		s.Close()
		if err != nil || printErr != nil || ctx.Err() != nil || !opts.Reconnect {
			return errors.Join(err, printErr)
		}
		fmt.Fprintf(opts.IO.ErrOut, "Session %s ended; starting a new one (--reconnect)\n", s.ID())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reconnectDelay(attempt)):
		}
	}
}

// reconnectDelay spaces new sessions when the service keeps ending them
// at once: none at first, then up to 5 s.
func reconnectDelay(attempt int) time.Duration {
	if attempt == 0 {
		return 0
	}
	return min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)
}

// lockedWriter serialises JSON lines from several sessions.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
