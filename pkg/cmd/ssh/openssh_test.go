package ssh_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// testSSHD is a small SSH server for the test: public-key login for one
// key, and every exec request run by /bin/sh -c with the channel as its
// standard streams, so scp and git work through it as through sshd.
type testSSHD struct {
	addr string
	wg   sync.WaitGroup
}

func startSSHD(t *testing.T, client ssh.PublicKey) *testSSHD {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), client.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testSSHD{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); d.wg.Wait() })
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.serve(c, cfg)
			}()
		}
	}()
	return d
}

func (d *testSSHD) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range chReqs {
				if req.Type != "exec" {
					_ = req.Reply(req.Type == "env", nil)
					continue
				}
				var payload struct{ Command string }
				_ = ssh.Unmarshal(req.Payload, &payload)
				_ = req.Reply(true, nil)
				cmd := exec.Command("/bin/sh", "-c", payload.Command)
				cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
				// Not cmd.Stdin = ch: Wait would wait for the client to
				// close its side, which it does only after the exit status.
				stdin, _ := cmd.StdinPipe()
				go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
				code := 0
				var ee *exec.ExitError
				if err := cmd.Run(); errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					code = 255
				}
				_ = ch.CloseWrite()
				var status [4]byte
				binary.BigEndian.PutUint32(status[:], uint32(code))
				_, _ = ch.SendRequest("exit-status", false, status[:])
				return
			}
		}()
	}
}

// TestOpenSSHThroughSSMKit drives the real OpenSSH client: `ssmkit ssh
// user@target` runs ssh with ssmkit as its ProxyCommand, and with the
// block `ssmkit ssh config --write` puts into ~/.ssh/config, plain ssh, scp
// and git reach the node by ID — all through AWS-StartSSHSession on the
// sandbox to a test sshd.
func TestOpenSSHThroughSSMKit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ssmkit, starts moto and the sandbox, runs ssh")
	}
	tools := map[string]string{}
	for _, tool := range []string{"ssh", "scp", "git"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			testutil.MissingTool(t, "%s is not installed: apt-get install openssh-client git", tool)
		}
		tools[tool] = p
	}
	home := t.TempDir()
	bin := testutil.BuildSSMKit(t, "")

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(home, "id_test")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	clientPub, _ := ssh.NewPublicKey(pub)
	sshd := startSSHD(t, clientPub)
	_, port, _ := net.SplitHostPort(sshd.addr)

	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "ssh-1"}}})
	id := sb.Instances()[0].ID
	env := append(os.Environ(), sb.Env()...)
	env = append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1")
	sshOpts := []string{"-i", key, "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	run := func(name string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return stdout.String(), stderr.String(), code
	}

	t.Run("ssmkit ssh user@name runs ssh", func(t *testing.T) {
		args := append([]string{"ssh", "tester@ssh-1", "--port", port, "--"}, sshOpts...)
		stdout, stderr, code := run(bin, append(args, "echo remote-$((6*7)); exit 3")...)
		if code != 3 || stdout != "remote-42\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	// The config block, written where ssh reads it.
	if _, stderr, code := run(bin, "ssh", "config", "--write", "--user", "tester"); code != 0 || !strings.Contains(stderr, "Created") {
		t.Fatalf("ssh config --write: %d %s", code, stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(home, ".ssh", "config"))
	if !strings.Contains(string(cfg), "ProxyCommand "+bin+" ssh %h --port %p") {
		t.Fatalf("config:\n%s", cfg)
	}
	// OpenSSH reads ~ from the password database, not $HOME: name the
	// file written above.
	sshOpts = append(sshOpts, "-F", filepath.Join(home, ".ssh", "config"))
	sshPort := append([]string{"-p", port}, sshOpts...)

	t.Run("ssh", func(t *testing.T) {
		stdout, stderr, code := run(tools["ssh"], append(sshPort, id, "uname -s")...)
		if code != 0 || strings.TrimSpace(stdout) == "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("scp both ways", func(t *testing.T) {
		local := filepath.Join(home, "up.txt")
		remote := filepath.Join(t.TempDir(), "remote.txt") // the node is this machine
		data := strings.Repeat("scp over session manager\n", 4096)
		os.WriteFile(local, []byte(data), 0o644)
		// -O: the classic scp protocol (scp -t/-f on the remote), which
		// this sshd serves by running scp.
		scpArgs := append([]string{"-O", "-P", port}, sshOpts...)
		if _, stderr, code := run(tools["scp"], append(scpArgs, local, id+":"+remote)...); code != 0 {
			t.Fatalf("scp up: %d %s", code, stderr)
		}
		back := filepath.Join(home, "down.txt")
		if _, stderr, code := run(tools["scp"], append(scpArgs, id+":"+remote, back)...); code != 0 {
			t.Fatalf("scp down: %d %s", code, stderr)
		}
		if got, _ := os.ReadFile(back); string(got) != data {
			t.Fatalf("round trip changed the file (%d bytes)", len(got))
		}
	})

	t.Run("git clone", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "repo.git")
		for _, args := range [][]string{
			{"init", "-q", "--bare", repo},
		} {
			if _, stderr, code := run(tools["git"], args...); code != 0 {
				t.Fatalf("git %v: %s", args, stderr)
			}
		}
		work := filepath.Join(home, "work")
		gitSSH := "ssh -p " + port + " " + strings.Join(sshOpts, " ")
		env = append(env, "GIT_SSH_COMMAND="+gitSSH)
		if _, stderr, code := run(tools["git"], "clone", "-q", "ssh://tester@"+id+repo, work); code != 0 {
			t.Fatalf("git clone: %s", stderr)
		}
		if _, err := os.Stat(filepath.Join(work, ".git")); err != nil {
			t.Fatal(err)
		}
	})
	sandboxtest.NoActiveSessions(t, sb)
}
