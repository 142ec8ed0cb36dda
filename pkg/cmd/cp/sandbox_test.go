package cp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// cpEnv is a sandbox node (this machine: the emulated agent runs commands
// here) and a way to run cp against it.
type cpEnv struct {
	sb      *sandbox.Sandbox
	clients session.Clients
}

func newCPEnv(t testing.TB) *cpEnv {
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "cp-1"}}})
	return &cpEnv{sb: sb, clients: session.NewClients(sb.AWSConfig())}
}

// cp runs `ssmkit cp` with args parsed as the command line would.
func (e *cpEnv) cp(t testing.TB, args ...string) (stderr string, err error) {
	t.Helper()
	ios, _, _, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, SessionClients: func(context.Context) (session.Clients, error) { return e.clients, nil }}
	cmd := NewCmdCp(f, nil)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return errOut.String(), err
}

func writeRandom(t testing.TB, p string, n int64) []byte {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	r := rand.NewChaCha8([32]byte{7})
	if _, err := io.CopyN(io.MultiWriter(f, h), r, n); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func sumFile(t testing.TB, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// TestCopyAgainstSandbox: files and directories both ways, checked byte for
// byte; every error a user meets gets one clear line; nothing is left
// running and no partial file is left behind.
func TestCopyAgainstSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	e := newCPEnv(t)
	local, remote := t.TempDir(), t.TempDir() // the node's files are on this machine too

	t.Run("file both ways", func(t *testing.T) {
		want := writeRandom(t, filepath.Join(local, "a.bin"), 3<<20+17)
		if stderr, err := e.cp(t, filepath.Join(local, "a.bin"), "cp-1:"+remote+"/"); err != nil {
			t.Fatalf("upload: %v %s", err, stderr)
		}
		if got := sumFile(t, filepath.Join(remote, "a.bin")); !bytes.Equal(got, want) {
			t.Fatal("upload changed the file")
		}
		if stderr, err := e.cp(t, "cp-1:"+filepath.Join(remote, "a.bin"), filepath.Join(local, "b.bin")); err != nil {
			t.Fatalf("download: %v %s", err, stderr)
		}
		if got := sumFile(t, filepath.Join(local, "b.bin")); !bytes.Equal(got, want) {
			t.Fatal("download changed the file")
		}
	})

	t.Run("file in parallel over an existing file", func(t *testing.T) {
		dst := filepath.Join(remote, "p.bin")
		os.WriteFile(dst, []byte("old\n"), 0o600)
		want := writeRandom(t, filepath.Join(local, "p.bin"), 5<<20+17) // parts of 2, 2 and 1 MiB + 17
		parts := countParts(t)
		if stderr, err := e.cp(t, "--parallel", "3", filepath.Join(local, "p.bin"), "cp-1:"+dst); err != nil {
			t.Fatalf("upload: %v %s", err, stderr)
		}
		if got := sumFile(t, dst); !bytes.Equal(got, want) {
			t.Fatal("the parallel upload changed the file")
		}
		if n := parts(); n != 3 {
			t.Fatalf("%d sessions sent parts, want 3", n)
		}
	})

	t.Run("a part's session ends", func(t *testing.T) {
		dst := filepath.Join(remote, "keep.bin")
		os.WriteFile(dst, []byte("old\n"), 0o600)
		writeRandom(t, filepath.Join(local, "k.bin"), 6<<20)
		// Once the three parts' scripts are ready (their work directory
		// exists), the second part's session is terminated through the
		// SSM API, as an administrator would, before it sends a byte; the
		// other two send nothing until cp ends their sessions. (The
		// emulated agent cannot yet end a session whose pty is full of
		// input: its write blocks forever once the shell is killed; see
		// the notes, "cp parallel upload".)
		var (
			mu     sync.Mutex
			ready  int
			all    = make(chan struct{})
			victim string
		)
		partReady = func(i int, s *session.Session) {
			mu.Lock()
			if i == 1 {
				victim = s.ID()
			}
			if ready++; ready == 3 {
				close(all)
			}
			mu.Unlock()
			<-all
			if i != 1 {
				<-s.Done()
				return
			}
			if _, err := e.clients.SSM.TerminateSession(context.Background(), &ssm.TerminateSessionInput{SessionId: aws.String(s.ID())}); err != nil {
				t.Error(err)
			}
			<-s.Done()
		}
		defer func() { partReady = nil }()
		_, err := e.cp(t, "--parallel", "3", filepath.Join(local, "k.bin"), "cp-1:"+dst)
		if err == nil || victim == "" || !strings.Contains(err.Error(), victim) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("err = %v, want one line naming the terminated session %s", err, victim)
		}
		if got, _ := os.ReadFile(dst); string(got) != "old\n" {
			t.Fatalf("the destination changed: %d bytes", len(got))
		}
		if matches, _ := filepath.Glob(filepath.Join(remote, "*ssmkit*")); len(matches) > 0 {
			t.Fatalf("left behind: %v", matches)
		}
	})

	t.Run("directory both ways", func(t *testing.T) {
		src := filepath.Join(local, "tree")
		os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755)
		os.WriteFile(filepath.Join(src, "top.txt"), []byte("top\n"), 0o644)
		os.WriteFile(filepath.Join(src, "sub", "deeper", "x.sh"), []byte("#!/bin/sh\n"), 0o755)
		os.WriteFile(filepath.Join(src, "empty"), nil, 0o600)
		writeRandom(t, filepath.Join(src, "sub", "big.bin"), 1<<20)
		if stderr, err := e.cp(t, "-r", src, "cp-1:"+filepath.Join(remote, "copy")); err != nil {
			t.Fatalf("upload: %v %s", err, stderr)
		}
		if stderr, err := e.cp(t, "-r", "cp-1:"+filepath.Join(remote, "copy"), filepath.Join(local, "back")); err != nil {
			t.Fatalf("download: %v %s", err, stderr)
		}
		for _, rel := range []string{"top.txt", "sub/deeper/x.sh", "empty", "sub/big.bin"} {
			a, b := sumFile(t, filepath.Join(src, rel)), sumFile(t, filepath.Join(local, "back", rel))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs after the round trip", rel)
			}
		}
		if fi, err := os.Stat(filepath.Join(local, "back", "sub", "deeper", "x.sh")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("mode not kept: %v %v", fi, err)
		}
		// Into an existing directory: the tree lands inside it.
		if stderr, err := e.cp(t, "-r", "cp-1:"+filepath.Join(remote, "copy"), filepath.Join(local, "back")); err != nil {
			t.Fatalf("download into a directory: %v %s", err, stderr)
		}
		if _, err := os.Stat(filepath.Join(local, "back", "copy", "top.txt")); err != nil {
			t.Error(err)
		}
	})

	locked := filepath.Join(remote, "locked")
	os.MkdirAll(locked, 0o755)
	os.WriteFile(filepath.Join(remote, "plain"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(local, "small"), []byte("small\n"), 0o644)
	os.Chmod(locked, 0o500)
	defer os.Chmod(locked, 0o755)
	// The agent runs commands as us; root ignores file modes, so a
	// directory no one may create files in is the proc file system.
	if os.Geteuid() == 0 {
		locked = "/proc"
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "remote missing", args: []string{"cp-1:" + remote + "/nope", local + "/x"}, want: remote + "/nope: no such file or directory"},
		{name: "remote directory without -r", args: []string{"cp-1:" + remote, local + "/x"}, want: "is a directory (use -r"},
		{name: "remote parent missing", args: []string{local + "/small", "cp-1:" + remote + "/no/such/dir/f"}, want: "not a directory"},
		{name: "remote parent is a file", args: []string{local + "/small", "cp-1:" + remote + "/plain/f"}, want: "not a directory"},
		{name: "remote permission", args: []string{local + "/small", "cp-1:" + locked + "/f"}, want: "permission denied"},
		{name: "local missing", args: []string{local + "/nope", "cp-1:" + remote + "/"}, want: local + "/nope: no such file or directory"},
		{name: "local directory without -r", args: []string{local, "cp-1:" + remote + "/"}, want: "is a directory (use -r"},
		{name: "local parent missing", args: []string{"cp-1:" + remote + "/plain", local + "/no/such/f"}, want: "no such file or directory"},
		{name: "unknown node", args: []string{local + "/small", "nope-1:/tmp/"}, want: `no running instance or managed node matches the name "nope-1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.cp(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line with %q", err, tt.want)
			}
		})
	}
	// No partial files next to the destinations.
	for _, dir := range []string{local, remote} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*ssmkit*"))
		if len(matches) > 0 {
			t.Errorf("left behind: %v", matches)
		}
	}
	sandboxtest.NoActiveSessions(t, e.sb)
}

// TestCopy256MiB copies 256 MiB to the node and back and checks SHA-256 at
// both ends (scripts/test.sh runs it without the race detector, which
// would make it slow; see there).
func TestCopy256MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 512 MiB through the sandbox")
	}
	if raceEnabled {
		t.Skip("slow under the race detector: scripts/test.sh runs it without -race")
	}
	e := newCPEnv(t)
	local, remote := t.TempDir(), t.TempDir()
	want := writeRandom(t, filepath.Join(local, "big.bin"), 256<<20)
	parts := countParts(t)
	start := time.Now()
	if stderr, err := e.cp(t, filepath.Join(local, "big.bin"), "cp-1:"+remote+"/"); err != nil {
		t.Fatalf("upload: %v %s", err, stderr)
	}
	up := time.Since(start)
	if n := parts(); n != defaultMaxParallel {
		t.Errorf("the upload went through %d sessions, want %d", n, defaultMaxParallel)
	}
	os.Remove(filepath.Join(local, "big.bin"))
	start = time.Now()
	if stderr, err := e.cp(t, "cp-1:"+filepath.Join(remote, "big.bin"), filepath.Join(local, "back.bin")); err != nil {
		t.Fatalf("download: %v %s", err, stderr)
	}
	down := time.Since(start)
	if !bytes.Equal(sumFile(t, filepath.Join(remote, "big.bin")), want) || !bytes.Equal(sumFile(t, filepath.Join(local, "back.bin")), want) {
		t.Fatal("SHA-256 differs after the round trip")
	}
	t.Logf("256 MiB: up %v (%.0f MB/s), down %v (%.0f MB/s)", up, 256*1.048576/up.Seconds(), down, 256*1.048576/down.Seconds())
	sandboxtest.NoActiveSessions(t, e.sb)
}

// countParts counts the sessions that send parts of a parallel upload
// until the test ends.
func countParts(t testing.TB) func() int {
	var n atomic.Int32
	partReady = func(int, *session.Session) { n.Add(1) }
	t.Cleanup(func() { partReady = nil })
	return func() int { return int(n.Load()) }
}
