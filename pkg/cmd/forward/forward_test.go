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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec    string
		want    Spec
		wantErr string
	}{
		{spec: "8080:80", want: Spec{LocalPort: 8080, RemotePort: 80}},
		{spec: "0:5432", want: Spec{RemotePort: 5432}},
		{spec: "0.0.0.0:9000:9000", want: Spec{Bind: "0.0.0.0", LocalPort: 9000, RemotePort: 9000}},
		{spec: "[::1]:22:22", want: Spec{Bind: "::1", LocalPort: 22, RemotePort: 22}},
		{spec: "[::]:22:22", want: Spec{Bind: "::", LocalPort: 22, RemotePort: 22}},
		{spec: "localhost:8080:80", want: Spec{Bind: "localhost", LocalPort: 8080, RemotePort: 80}},
		{spec: "5432:db.internal:5432", want: Spec{LocalPort: 5432, Host: "db.internal", RemotePort: 5432}},
		{spec: "127.0.0.1:5432:db.internal:5432", want: Spec{Bind: "127.0.0.1", LocalPort: 5432, Host: "db.internal", RemotePort: 5432}},
		{spec: "0:[fd00::5]:443", want: Spec{Host: "fd00::5", RemotePort: 443}},
		{spec: "/tmp/db.sock:5432", want: Spec{Socket: "/tmp/db.sock", RemotePort: 5432}},
		{spec: "./web.sock:web.internal:80", want: Spec{Socket: "./web.sock", Host: "web.internal", RemotePort: 80}},
		{spec: "80", wantErr: "is not [bind:]local-port:[host:]remote-port"},
		{spec: "a:80", wantErr: "local port"},
		{spec: "80:0", wantErr: "remote port"},
		{spec: "70000:80", wantErr: "local port"},
		{spec: ":80:80", wantErr: "empty bind address"},
		{spec: "nosuchhost:80:80", wantErr: "not an IP address or localhost"},
		{spec: "1:2:3:4:5", wantErr: "is not"},
		{spec: "[::1:22:22", wantErr: "unbalanced"},
		{spec: "/tmp/x.sock", wantErr: "needs a remote port"},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %+v, %v; want %+v", tt.spec, got, err, tt.want)
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
		{name: "ports", args: []string{"i-0123456789abcdef0", "8080:80"}, want: ForwardOptions{Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Specs: []Spec{{LocalPort: 8080, RemotePort: 80}}}},
		{name: "host and json", args: []string{"bastion", "0:5432", "--host", "db.internal", "--json"}, want: ForwardOptions{Target: cmdutil.Target{Arg: "bastion"}, Specs: []Spec{{RemotePort: 5432}}, Host: "db.internal", JSON: true}},
		{name: "global json output", args: []string{"bastion", "0:5432"}, output: cmdutil.OutputJSON, want: ForwardOptions{Target: cmdutil.Target{Arg: "bastion"}, Specs: []Spec{{RemotePort: 5432}}, JSON: true}},
		{name: "several and reconnect", args: []string{"bastion", "5432:db:5432", "/tmp/s:80", "--reconnect"}, want: ForwardOptions{Target: cmdutil.Target{Arg: "bastion"}, Specs: []Spec{{LocalPort: 5432, Host: "db", RemotePort: 5432}, {Socket: "/tmp/s", RemotePort: 80}}, Reconnect: true}},
		{name: "bad spec", args: []string{"bastion", "5432"}, wantErr: "is not [bind:]local-port:[host:]remote-port"},
		{name: "bad bind address", args: []string{"bastion", "nosuchhost:80:80"}, wantErr: "bind address \"nosuchhost\" is not an IP address or localhost"},
		{name: "missing spec", args: []string{"bastion"}, wantErr: "requires at least 2 arg"},
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
			if g.Target != w.Target || fmt.Sprint(g.Specs) != fmt.Sprint(w.Specs) || g.Reconnect != w.Reconnect ||
				g.Host != w.Host || g.JSON != w.JSON || g.Reason != w.Reason {
				t.Errorf("options = %+v, want %+v", g, w)
			}
		})
	}
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
			var stdout, stderr testutil.SyncBuffer
			ios.Out, ios.ErrOut = &stdout, &stderr
			opts := &ForwardOptions{
				IO: ios, Target: cmdutil.Target{Arg: "web-1"}, Specs: []Spec{{RemotePort: port}}, Host: tc.host, JSON: true,
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
		IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Specs: []Spec{{LocalPort: ln.Addr().(*net.TCPAddr).Port, RemotePort: 80}},
		Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
	}
	if err := forwardRun(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "listening on 127.0.0.1") {
		t.Fatalf("err = %v", err)
	}
	if len(svc.Starts()) != 0 {
		t.Error("a session was started although the local port is busy")
	}
}
