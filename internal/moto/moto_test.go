//go:build unix

package moto

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

func kmsClient(url string) *kms.Client {
	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// startServer starts a private server; a missing moto skips the test (fails with SSMKIT_CI=1).
func startServer(t *testing.T) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a moto server; skipped under -short")
	}
	srv, err := Start(context.Background(), Options{})
	if errors.Is(err, ErrPythonNotFound) || errors.Is(err, ErrMotoNotInstalled) {
		testutil.MissingTool(t, "moto not available: %v; %s", err, testutil.InstallMoto)
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// assertGone fails unless neither the process nor any other member of its process group is
// still running. Zombies count as gone: a process the script left to init may wait a while
// for a reaper that this sandbox's init does not promise.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	if alive(pid) {
		t.Errorf("process %d still running after stop", pid)
	}
	if err := syscall.Kill(-pid, 0); err == nil {
		if runtime.GOOS != "linux" {
			t.Errorf("process group %d still exists after stop", pid)
			return
		}
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, f := range stats {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			// Fields after the ")" that closes comm: state ppid pgrp ...
			rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			if len(rest) >= 3 && rest[0] != "Z" && rest[2] == strconv.Itoa(pid) {
				t.Errorf("process group %d still has a live member (%s)", pid, f)
			}
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(rest) == 0 || rest[0] != "Z"
}

func TestStartCreateKeyClose(t *testing.T) {
	srv := startServer(t)
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %q, want a loopback http URL", srv.URL())
	}
	ctx := context.Background()
	c := kmsClient(srv.URL())
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("motoserver test")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if out.KeyMetadata == nil || aws.ToString(out.KeyMetadata.KeyId) == "" {
		t.Fatalf("CreateKey returned no key id: %+v", out)
	}

	pid := srv.Pid()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertGone(t, pid)
	if err := Ping(ctx, srv.URL()); err == nil {
		t.Errorf("server still answers at %s after Close", srv.URL())
	}
}

func TestStartFixedPortAndLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a moto server; skipped under -short")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var log testutil.SyncBuffer
	srv, err := Start(context.Background(), Options{Port: port, LogWriter: &log})
	if errors.Is(err, ErrPythonNotFound) || errors.Is(err, ErrMotoNotInstalled) {
		testutil.MissingTool(t, "moto not available: %v; %s", err, testutil.InstallMoto)
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Close()
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); srv.URL() != want {
		t.Errorf("URL() = %q, want %q", srv.URL(), want)
	}
	// A second server on the same fixed port must fail rather than hang or pretend.
	_, err = Start(context.Background(), Options{Port: port, StartTimeout: 20 * time.Second})
	if err == nil {
		t.Fatal("second Start on a busy port succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "moto-api") {
		t.Errorf("LogWriter did not receive moto's request log; got %q", log.String())
	}
}

func TestStartMissingPython(t *testing.T) {
	_, err := Start(context.Background(), Options{Python: filepath.Join(t.TempDir(), "no-python")})
	if !errors.Is(err, ErrPythonNotFound) {
		t.Fatalf("Start with a missing interpreter: err = %v, want ErrPythonNotFound", err)
	}
	// The cause stays in the chain (%w: %w), not only in the text.
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Start with a missing interpreter: err = %v does not wrap fs.ErrNotExist", err)
	}
}

func TestStartMissingMoto(t *testing.T) {
	// A fake interpreter that "finds" nothing stands in for a Python without moto.
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho moto flask\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Python: fake})
	if !errors.Is(err, ErrMotoNotInstalled) {
		t.Fatalf("err = %v, want ErrMotoNotInstalled", err)
	}
	if !strings.Contains(err.Error(), "moto flask") {
		t.Errorf("error %q does not name the missing modules", err)
	}
}

func TestStartExitsEarly(t *testing.T) {
	// An interpreter that passes the module check but dies at once must not make Start wait
	// for the whole timeout.
	dir := t.TempDir()
	fake := filepath.Join(dir, "python")
	script := "#!/bin/sh\ncase \"$2\" in moto.server) echo boom >&2; exit 1;; esac\necho\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err := Start(context.Background(), Options{Python: fake})
	if !errors.Is(err, errExitedEarly) {
		t.Fatalf("err = %v, want errExitedEarly", err)
	}
	if !strings.Contains(err.Error(), "boom") {
		t.Errorf("error %q does not carry moto's output", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Start took %v to notice the exit", d)
	}
}

func TestScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a moto server; skipped under -short")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		testutil.MissingTool(t, "bash not available")
	}
	if _, err := findPython(context.Background(), ""); err != nil {
		testutil.MissingTool(t, "python not available: %v; %s", err, testutil.InstallMoto)
	}
	script, err := filepath.Abs("../../scripts/moto.sh")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	out, err := exec.Command("bash", script, "start", state).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not installed") {
			testutil.MissingTool(t, "moto not available: %s; %s", out, testutil.InstallMoto)
		}
		t.Fatalf("moto.sh start: %v\n%s", err, out)
	}
	pidBytes, err := os.ReadFile(filepath.Join(state, "moto.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidBytes)))
	if err != nil {
		t.Fatalf("moto.pid: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
	urlBytes, err := os.ReadFile(filepath.Join(state, "moto.url"))
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(string(urlBytes))
	if want := "export SSMKIT_MOTO_URL=" + url; !strings.Contains(string(out), want) {
		t.Errorf("moto.sh start printed %q, want a line %q", out, want)
	}
	if _, err := kmsClient(url).CreateKey(context.Background(), &kms.CreateKeyInput{}); err != nil {
		t.Errorf("CreateKey against the script's server: %v", err)
	}

	if out, err := exec.Command("bash", script, "stop", state).CombinedOutput(); err != nil {
		t.Fatalf("moto.sh stop: %v\n%s", err, out)
	}
	stopped = true
	assertGone(t, pid)
	// Stopping twice is harmless.
	if out, err := exec.Command("bash", script, "stop", state).CombinedOutput(); err != nil {
		t.Errorf("second moto.sh stop: %v\n%s", err, out)
	}
}
