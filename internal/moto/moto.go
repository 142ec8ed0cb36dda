// Package moto starts and stops a local moto server, the Python AWS service emulator that
// `ssmkit sandbox` puts behind its own APIs and that tests talk to instead of real AWS.
//
// It is part of the shipped binary, so it must never import testing: the test helpers built
// on it live in internal/testutil/motoserver.
package moto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvPython names the environment variable that overrides the Python interpreter used to run
// moto. It must be the real interpreter path, not a pyenv shim.
const EnvPython = "SSMKIT_PYTHON"

// DefaultStartTimeout bounds how long Start waits for moto to answer HTTP requests.
const DefaultStartTimeout = 30 * time.Second

// stopGrace is how long Close waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// portAttempts bounds how often Start retries with a fresh free port when moto fails to bind
// one that another process grabbed between our probe and moto's bind.
const portAttempts = 3

// Sentinel errors. Callers use them to tell "not installed" (say how to install it; tests skip,
// or fail in CI) from "installed but broken".
var (
	// ErrPythonNotFound means no Python interpreter could be located.
	ErrPythonNotFound = errors.New("python interpreter not found")
	// ErrMotoNotInstalled means Python exists but cannot import moto's server dependencies.
	ErrMotoNotInstalled = errors.New("moto server is not installed")
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Python is the interpreter that runs `-m moto.server`. Empty means $SSMKIT_PYTHON, or
	// else the real executable behind `python3` (sys.executable, which sees through shims).
	Python string
	// Port is the loopback port to listen on; 0 picks a free one.
	Port int
	// LogWriter receives moto's stdout and stderr. Nil discards them.
	LogWriter io.Writer
	// Env holds extra "KEY=VALUE" entries appended to the process environment.
	Env []string
	// StartTimeout bounds the wait for moto to become ready; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a running moto process. Close stops it; Close is safe to call more than once
// and from several goroutines.
type Server struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	wait error         // cmd.Wait result, valid after done is closed

	closeOnce sync.Once
}

// Start launches `<python> -m moto.server -H 127.0.0.1 -p <port>` in its own process group
// with MOTO_IAM_LOAD_MANAGED_POLICIES=true and waits until it answers HTTP.
//
// ctx bounds the start-up only: once Start returns, the server runs until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	python, err := findPython(ctx, opts.Python)
	if err != nil {
		return nil, err
	}
	if err := checkMoto(ctx, python); err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	attempts := 1
	if opts.Port == 0 {
		attempts = portAttempts
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		} else if err := portFree(port); err != nil {
			// Without this check the readiness probe could be answered by whatever already
			// listens there, and Start would report success for a server that died.
			return nil, err
		}
		srv, err := startOnce(ctx, python, port, opts)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, lastErr
}

// errExitedEarly marks a start attempt whose process died before answering; a retry with
// another port may succeed.
var errExitedEarly = errors.New("moto server exited during start-up")

func startOnce(ctx context.Context, python string, port int, opts Options) (*Server, error) {
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
	cmd.Env = append(cmd.Env, opts.Env...)
	// tail keeps the last few KB of output so a failed start can say why, even when the
	// caller discards the log.
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if opts.LogWriter != nil {
		out = io.MultiWriter(tail, opts.LogWriter)
	}
	cmd.Stdout = out
	cmd.Stderr = out
	setProcessGroup(cmd)

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto server with %s: %w", python, err)
	}
	s := &Server{url: url, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.wait = cmd.Wait()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Close()
		if errors.Is(err, errExitedEarly) {
			return nil, fmt.Errorf("%w on port %d: %s", err, port, tail.String())
		}
		return nil, fmt.Errorf("waiting for moto server on %s: %w (output: %s)", url, err, tail.String())
	}
	return s, nil
}

// waitReady polls GET /moto-api/ until moto answers with any HTTP status.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ping(ctx, client, s.url) == nil {
			return nil
		}
		select {
		case <-s.done:
			return errExitedEarly
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// URL is the server's base endpoint, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Pid is the process id of the moto process, which is also its process group id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Close stops the server's whole process group (SIGTERM, then SIGKILL after a grace period)
// and waits for the process to be reaped. It returns nil: a server that is gone is closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.done:
			return // already exited on its own
		default:
		}
		_ = signalGroup(s.cmd, false)
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			_ = signalGroup(s.cmd, true)
			<-s.done
		}
		// The process group may hold children that outlived the leader; make sure they go too.
		_ = signalGroup(s.cmd, true)
	})
	return nil
}

// Ping reports whether a moto server answers at url.
func Ping(ctx context.Context, url string) error {
	return ping(ctx, &http.Client{Timeout: 5 * time.Second}, strings.TrimRight(url, "/"))
}

func ping(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/moto-api/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// findPython returns the interpreter to use: explicit, $SSMKIT_PYTHON, or sys.executable of
// python3 (which resolves pyenv shims to the real binary, so signals reach moto itself).
func findPython(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv(EnvPython); p != "" {
		return p, nil
	}
	shim, err := exec.LookPath("python3")
	if err != nil {
		return "", fmt.Errorf("%w: python3 is not on PATH (set %s)", ErrPythonNotFound, EnvPython)
	}
	out, err := exec.CommandContext(ctx, shim, "-c", "import sys;print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("%w: running %s: %w", ErrPythonNotFound, shim, err)
	}
	p := strings.TrimSpace(string(out))
	if p == "" {
		return "", fmt.Errorf("%w: %s reported no sys.executable", ErrPythonNotFound, shim)
	}
	return p, nil
}

// checkMoto verifies that python can find moto and the web stack moto.server needs, without
// paying for importing them.
func checkMoto(ctx context.Context, python string) error {
	const script = `import importlib.util,sys
missing=[m for m in ("moto","werkzeug","flask","flask_cors") if importlib.util.find_spec(m) is None]
print(" ".join(missing))`
	out, err := exec.CommandContext(ctx, python, "-c", script).Output()
	if err != nil {
		return fmt.Errorf("%w: running %s: %w", ErrPythonNotFound, python, err)
	}
	if missing := strings.TrimSpace(string(out)); missing != "" {
		return fmt.Errorf("%w: %s cannot import %s (pip install 'moto[server]')", ErrMotoNotInstalled, python, missing)
	}
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree fails when something already listens on the loopback port.
func portFree(port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("loopback port %d is not free: %w", port, err)
	}
	return l.Close()
}

// tailBuffer keeps the last max bytes written to it. It is safe for concurrent use, because
// exec copies stdout and stderr from separate goroutines when they are not *os.File.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if extra := t.buf.Len() - t.max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(t.buf.String())
	if s == "" {
		return "(no output)"
	}
	return s
}
