package ssh

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

func TestNewCmdSSH(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantPort   int
		wantUser   string
		wantTarget string
		wantSSH    string
		wantErr    string
	}{
		{name: "default port", args: []string{"i-0123456789abcdef0"}, wantPort: 22},
		{name: "proxy command form", args: []string{"i-0123456789abcdef0", "--port", "2222"}, wantPort: 2222},
		{name: "short flag", args: []string{"web", "-p", "22"}, wantPort: 22},
		{name: "bad port", args: []string{"web", "--port", "0"}, wantErr: "not a port number"},
		{name: "no target", args: []string{}, wantErr: "requires at least 1 arg"},
		{name: "user at target", args: []string{"ec2-user@web", "--", "-i", "k", "uptime"}, wantPort: 22, wantUser: "ec2-user", wantTarget: "web", wantSSH: "-i k uptime"},
		{name: "login flag", args: []string{"-l", "ubuntu", "i-0123456789abcdef0"}, wantPort: 22, wantUser: "ubuntu"},
		{name: "ssh args need a user", args: []string{"web", "--", "uptime"}, wantErr: "need a user"},
		{name: "args before dash", args: []string{"u@web", "uptime"}, wantErr: "after --"},
		{name: "empty user", args: []string{"@web"}, wantErr: "is not user@target"},
		{name: "two users", args: []string{"-l", "a", "b@web"}, wantErr: "two users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *SSHOptions
			cmd := NewCmdSSH(&cmdutil.Factory{IOStreams: ios}, func(o *SSHOptions) error { got = o; return nil })
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
			wantTarget := tt.wantTarget
			if wantTarget == "" {
				wantTarget = tt.args[len(tt.args)-1]
				if tt.wantUser == "" {
					wantTarget = tt.args[0]
				}
			}
			if got.Port != tt.wantPort || got.Target.Arg != wantTarget || got.User != tt.wantUser || strings.Join(got.SSHArgs, " ") != tt.wantSSH {
				t.Errorf("options = %+v", got)
			}
		})
	}
}

func TestSSHRun(t *testing.T) {
	// A stand-in sshd: greets, reads one line and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("SSH-2.0-fake\r\n"))
		buf := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(buf)
		got <- string(buf[:n])
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	svc := sessiontest.New(t)
	ios, stdin, stdout, stderr := iostreams.Test()
	stdin.WriteString("SSH-2.0-client\r\n")
	opts := &SSHOptions{
		IO: ios, Target: cmdutil.Target{Arg: "i-0123456789abcdef0"}, Port: port,
		Clients: func(context.Context) (session.Clients, error) { return session.Clients{SSM: svc}, nil },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Stdin ends at once; the session ends when the fake sshd closes or
	// when the last bytes are acknowledged.
	if err := sshRun(ctx, opts); err != nil {
		t.Fatalf("sshRun: %v", err)
	}
	select {
	case line := <-got:
		if line != "SSH-2.0-client\r\n" {
			t.Errorf("sshd read %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sshd got nothing")
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}
	if s := stdout.String(); s != "" && s != "SSH-2.0-fake\r\n" {
		t.Errorf("stdout = %q, want only the SSH stream", s)
	}
	start := svc.Starts()[0]
	if aws.ToString(start.DocumentName) != ssmdoc.SSH || start.Parameters["portNumber"][0] != strconv.Itoa(port) {
		t.Errorf("StartSession = %s %v", aws.ToString(start.DocumentName), start.Parameters)
	}
}
