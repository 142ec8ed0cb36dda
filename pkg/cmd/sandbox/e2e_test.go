package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildSSMKit builds the real binary, since `up` re-executes itself.
func buildSSMKit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ssmkit")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ssmkit/ssmkit/cmd/ssmkit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ssmkit: %v\n%s", err, out)
	}
	return bin
}

// ssmkit runs the binary and returns stdout, stderr and the exit code.
func ssmkit(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("running ssmkit %v: %v", args, err)
	}
	return out.String(), errOut.String(), 0
}

func TestSandboxCommandCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ssmkit and starts moto")
	}
	bin := buildSSMKit(t)
	dir := filepath.Join(t.TempDir(), "state")

	t.Run("bad flags exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"sandbox", "up", "--bogus"},
			{"sandbox", "up", "--instance", "x:nope", "--state-dir", dir},
			{"sandbox", "up", "--instances", "many"},
			{"sandbox", "status", "extra"},
			{"sandbox", "nothing"},
		} {
			if _, stderr, code := ssmkit(t, bin, args...); code != 2 || !strings.Contains(stderr, "error:") {
				t.Errorf("ssmkit %v: exit %d, stderr %q; want 2", args, code, stderr)
			}
		}
	})

	t.Run("a failed start is reported with the log", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "state")
		_, stderr, code := ssmkit(t, bin, "sandbox", "up", "--state-dir", d, "--moto-url", "http://127.0.0.1:1")
		if code != 1 || !strings.Contains(stderr, "exited during start-up") || !strings.Contains(stderr, "does not answer") {
			t.Errorf("exit %d, %s", code, stderr)
		}
	})

	start := time.Now()
	out, stderr, code := ssmkit(t, bin, "sandbox", "up", "--state-dir", dir, "--instances", "3", "--tls")
	if code != 0 {
		if strings.Contains(stderr, "pip install") {
			t.Skipf("moto is not installed: %s", stderr)
		}
		t.Fatalf("up: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("up with 3 instances and TLS: %v", time.Since(start).Round(time.Millisecond))
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, nothing may outlive the test.
	t.Cleanup(func() {
		if processAlive(st.PID) {
			ssmkit(t, bin, "sandbox", "down", "--state-dir", dir)
		}
	})
	tree := descendants(st.PID)
	if len(tree) == 0 {
		t.Errorf("the serve process %d has no children (moto?)", st.PID)
	}
	if n := strings.Count(out, "Online"); n != 3 || !strings.Contains(stderr, `eval "$(ssmkit sandbox env --state-dir`) {
		t.Errorf("up printed %d Online rows:\n%s%s", n, out, stderr)
	}

	t.Run("a second up fails", func(t *testing.T) {
		if _, stderr, code := ssmkit(t, bin, "sandbox", "up", "--state-dir", dir); code != 1 || !strings.Contains(stderr, "already running") {
			t.Errorf("exit %d, %s", code, stderr)
		}
	})

	t.Run("status", func(t *testing.T) {
		out, stderr, code := ssmkit(t, bin, "sandbox", "status", "--state-dir", dir, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got statusJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		online := 0
		for _, m := range got.Managed {
			if m.PingStatus == "Online" {
				online++
			}
		}
		if !got.Running || !got.Reachable || got.State == nil || got.PID != st.PID || online != 3 || got.CA == "" {
			t.Errorf("status %+v", got)
		}
	})

	t.Run("env", func(t *testing.T) {
		out, stderr, code := ssmkit(t, bin, "sandbox", "env", "--state-dir", dir)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"export AWS_ENDPOINT_URL=" + st.URL + "\n", "export AWS_CA_BUNDLE=" + st.CA + "\n",
			"export SSL_CERT_FILE=" + st.CA + "\n", "export AWS_ACCESS_KEY_ID=", "export SSMKIT_SANDBOX_AGENT_CONFIG="} {
			if !strings.Contains(out, want) {
				t.Errorf("env lacks %q:\n%s", want, out)
			}
		}
		b, err := os.ReadFile(st.AgentConfig)
		if err != nil {
			t.Fatal(err)
		}
		var cfg agentConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		host := strings.TrimPrefix(st.URL, "https://")
		ids, _ := cfg.Identity["CustomIdentities"].([]any)
		if cfg.Mgs["Endpoint"] != host || cfg.Ssm["Endpoint"] != st.URL || cfg.Mds["Endpoint"] != st.URL ||
			cfg.Kms["Endpoint"] != st.URL || cfg.S3["Endpoint"] != st.URL || len(ids) != 1 {
			t.Errorf("agent config:\n%s", b)
		}
	})

	t.Run("foreground until interrupted", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "state")
		var errOut bytes.Buffer
		cmd := exec.Command(bin, "sandbox", "up", "--foreground", "--state-dir", d, "--instances", "1", "--moto-url", st.MotoURL)
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if fst, err := ReadState(d); err == nil && fst.PID == cmd.Process.Pid {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("foreground sandbox not ready: %s", errOut.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil || !strings.Contains(errOut.String(), "Sandbox stopped") {
				t.Errorf("foreground exit: %v, %s", err, errOut.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("foreground sandbox did not stop on SIGINT")
		}
	})

	t.Run("down leaves no process", func(t *testing.T) {
		_, stderr, code := ssmkit(t, bin, "sandbox", "down", "--state-dir", dir)
		if code != 0 || !strings.Contains(stderr, "Sandbox stopped") {
			t.Fatalf("down: exit %d, %s", code, stderr)
		}
		for _, pid := range append([]int{st.PID}, tree...) {
			if processAlive(pid) {
				t.Errorf("process %d is still running after down", pid)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
			t.Errorf("state file left: %v", err)
		}
		if _, _, code := ssmkit(t, bin, "sandbox", "status", "--state-dir", dir); code != 1 {
			t.Errorf("status after down: exit %d, want 1", code)
		}
	})
}
