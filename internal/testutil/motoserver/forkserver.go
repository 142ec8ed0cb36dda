package motoserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssmkit/ssmkit/internal/moto"
)

// EnvForkServer names the environment variable that points Private at a moto fork server (the
// Unix socket of forkserver.py, which scripts/test.sh starts for a whole test run). Each Private
// server is then a fork of one warm moto process: fresh state, started in milliseconds instead
// of the seconds of CPU a new moto process costs.
const EnvForkServer = "SSMKIT_MOTO_FORKSERVER"

// forked is a moto server forked by the fork server; it runs until conn is closed.
type forked struct {
	conn net.Conn
	pid  int
	url  string
}

// fork asks the fork server listening on socket for a fresh moto server.
func fork(ctx context.Context, socket string) (*forked, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("moto fork server at %s ($%s): %w", socket, EnvForkServer, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(deadline)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("moto fork server at %s ($%s) did not answer: %w", socket, EnvForkServer, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	var pid, port int
	fields := strings.Fields(line)
	if len(fields) == 2 {
		pid, err = strconv.Atoi(fields[0])
		if err == nil {
			port, err = strconv.Atoi(fields[1])
		}
	}
	if len(fields) != 2 || err != nil || pid <= 0 || port <= 0 {
		conn.Close()
		return nil, fmt.Errorf("moto fork server at %s ($%s): %s", socket, EnvForkServer, strings.TrimSpace(line))
	}
	f := &forked{conn: conn, pid: pid, url: "http://127.0.0.1:" + strconv.Itoa(port)}
	if err := moto.Ping(ctx, f.url); err != nil {
		f.Close()
		return nil, fmt.Errorf("moto forked by %s does not answer at %s: %w", socket, f.url, err)
	}
	return f, nil
}

// Close ends the forked server and waits until its process is gone. The child exits when its
// connection's read side ends, and its exit closes the other side: reading to EOF here is the
// wait. A child that does not exit within a grace period is killed.
func (f *forked) Close() error {
	uc := f.conn.(*net.UnixConn)
	defer uc.Close()
	_ = uc.CloseWrite()
	for _, kill := range []bool{false, true} {
		if kill {
			_ = syscall.Kill(f.pid, syscall.SIGKILL)
		}
		_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, uc); err == nil {
			return nil // EOF: the child has exited
		}
	}
	return fmt.Errorf("moto server %d forked for %s did not exit", f.pid, f.url)
}
