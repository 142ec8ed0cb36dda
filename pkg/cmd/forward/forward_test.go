package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

func TestParsePortSpec(t *testing.T) {
	tests := []struct {
		spec          string
		bind          string
		local, remote int
		wantErr       bool
	}{
		{spec: "8080:80", bind: "127.0.0.1", local: 8080, remote: 80},
		{spec: "0:5432", bind: "127.0.0.1", local: 0, remote: 5432},
		{spec: "0.0.0.0:9000:9000", bind: "0.0.0.0", local: 9000, remote: 9000},
		{spec: "[::1]:22:22", bind: "::1", local: 22, remote: 22},
		{spec: "80", wantErr: true},
		{spec: "a:80", wantErr: true},
		{spec: "80:0", wantErr: true},
		{spec: "70000:80", wantErr: true},
		{spec: ":80:80", wantErr: true},
	}
	for _, tt := range tests {
		bind, local, remote, err := ParsePortSpec(tt.spec)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v", tt.spec, err)
			continue
		}
		if !tt.wantErr && (bind != tt.bind || local != tt.local || remote != tt.remote) {
			t.Errorf("%q = %q %d %d", tt.spec, bind, local, remote)
		}
	}
}

func TestNewCmdForward(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		output  cmdutil.OutputFormat
		want    ForwardOptions
		wantErr string
	}{
		{name: "ports", args: []string{"i-0123456789abcdef0", "8080:80"}, want: ForwardOptions{Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, BindAddress: "127.0.0.1", LocalPort: 8080, RemotePort: 80}},
		{name: "host and json", args: []string{"bastion", "0:5432", "--host", "db.internal", "--json"}, want: ForwardOptions{Target: cmdutil.Target{Arg: "bastion"}, BindAddress: "127.0.0.1", RemotePort: 5432, Host: "db.internal", JSON: true}},
		{name: "global json output", args: []string{"bastion", "0:5432"}, output: cmdutil.OutputJSON, want: ForwardOptions{Target: cmdutil.Target{Arg: "bastion"}, BindAddress: "127.0.0.1", RemotePort: 5432, JSON: true}},
		{name: "bad spec", args: []string{"bastion", "5432"}, wantErr: "not <local-port>:<remote-port>"},
		{name: "missing spec", args: []string{"bastion"}, wantErr: "accepts 2 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			f.Options.Output = tt.output
			var got *ForwardOptions
			cmd := NewCmdForward(f, func(o *ForwardOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, w := *got, tt.want
			if g.Target != w.Target || g.BindAddress != w.BindAddress || g.LocalPort != w.LocalPort ||
				g.RemotePort != w.RemotePort || g.Host != w.Host || g.JSON != w.JSON || g.Reason != w.Reason {
				t.Errorf("options = %+v, want %+v", g, w)
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestForwardRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		host    string
		wantDoc string
	}{
		{name: "to the target", wantDoc: ssmdoc.PortForwarding},
		{name: "to a remote host", host: "127.0.0.1", wantDoc: ssmdoc.PortForwardingToRemoteHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := sessiontest.EchoServer(t)
			_, portS, _ := net.SplitHostPort(echo)
			port, _ := strconv.Atoi(portS)
			svc := sessiontest.New(t)
			ios, _, _, _ := iostreams.Test()
			var stdout, stderr syncBuffer
			ios.Out, ios.ErrOut = &stdout, &stderr
			opts := &ForwardOptions{
				IO: ios, Target: cmdutil.Target{Arg: "web-1"}, RemotePort: port, Host: tc.host, JSON: true,
				Clients: func(context.Context) (session.Clients, error) {
					return session.Clients{SSM: svc, EC2: &sessiontest.EC2{Names: map[string][]string{"web-1": {"i-0123456789abcdef0"}}}}, nil
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- forwardRun(ctx, opts) }()

			var r ready
			deadline := time.Now().Add(10 * time.Second)
			for json.Unmarshal([]byte(stdout.String()), &r) != nil {
				if time.Now().After(deadline) {
					t.Fatalf("no JSON on stdout; stderr %q", stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			c, err := net.Dial("tcp", r.LocalAddress)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(c, "ping")
			buf := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo = %q, %v", buf, err)
			}
			c.Close()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("forwardRun: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("forwardRun did not stop")
			}

			dest := "i-0123456789abcdef0"
			if tc.host != "" {
				dest = tc.host
			}
			want := fmt.Sprintf("Forwarding %s → %s:%d (%s)", r.LocalAddress, dest, port, r.SessionID)
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr = %q, want %q", stderr.String(), want)
			}
			start := svc.Starts()[0]
			if aws.ToString(start.DocumentName) != tc.wantDoc || start.Parameters["portNumber"][0] != portS ||
				aws.ToString(start.Target) != "i-0123456789abcdef0" {
				t.Errorf("StartSession = %s %s %v", aws.ToString(start.Target), aws.ToString(start.DocumentName), start.Parameters)
			}
			if tc.host != "" && start.Parameters["host"][0] != tc.host {
				t.Errorf("host parameter = %v", start.Parameters["host"])
			}
		})
	}
}

func TestForwardRunPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	svc := sessiontest.New(t)
	ios, _, _, _ := iostreams.Test()
	opts := &ForwardOptions{
		IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, BindAddress: "127.0.0.1", LocalPort: ln.Addr().(*net.TCPAddr).Port, RemotePort: 80,
		Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
	}
	if err := forwardRun(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "listening on 127.0.0.1") {
		t.Fatalf("err = %v", err)
	}
	if len(svc.Starts()) != 0 {
		t.Error("a session was started although the local port is busy")
	}
}
