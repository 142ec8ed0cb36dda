package sandbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
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
	out, stderr, code := ssmkit(t, bin, "sandbox", "up", "--state-dir", dir, "--instances", "3", "--tls", "--proxy", "--instance", "lab:hybrid")
	if code != 0 {
		if strings.Contains(stderr, "pip install") {
			testutil.MissingTool(t, "moto is not installed: %s; %s", stderr, testutil.InstallMoto)
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
	// The state file holds this run's credentials and ca-key.pem signs
	// certificates the agent trusts: only the owner may read them.
	for _, f := range []string{filepath.Join(dir, StateFile), filepath.Join(dir, "ca-key.pem")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode().Perm(), err)
		}
	}
	tree := descendants(st.PID)
	if len(tree) == 0 {
		t.Errorf("the serve process %d has no children (moto?)", st.PID)
	}
	if n := strings.Count(out, "Online"); n != 4 || !strings.Contains(stderr, `eval "$(ssmkit sandbox env --state-dir`) {
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
		if !got.Running || !got.Reachable || got.State == nil || got.PID != st.PID || online != 4 || got.CA == "" {
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
		env := parseExports(t, out)
		registerThroughAgentConfig(t, st.AgentConfig, env)

		// `ssmkit ls` in that environment shows the hybrid node.
		var hybrid InstanceState
		for _, i := range st.Instances {
			if i.Hybrid {
				hybrid = i
			}
		}
		cmd := exec.Command(bin, "ls")
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		lsOut, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(hybrid.ID, "mi-") {
			t.Fatalf("ssmkit ls: %v (hybrid %+v)\n%s", err, hybrid, lsOut)
		}
		found := false
		for _, line := range strings.Split(string(lsOut), "\n") {
			if strings.Contains(line, hybrid.ID) && strings.HasPrefix(line, "lab") && strings.Contains(line, "Online") && strings.Contains(line, "192.168.") {
				found = true
			}
		}
		if !found {
			t.Errorf("ssmkit ls does not show the hybrid node %s:\n%s", hybrid.ID, lsOut)
		}

		// The AWS CLI without any endpoint setting reaches the real host
		// name, kms.<region>.amazonaws.com, through HTTPS_PROXY.
		awsBin, err := exec.LookPath("aws")
		if err != nil {
			testutil.MissingTool(t, "the AWS CLI is not installed (apt-get install awscli or pip install awscli): %v", err)
		}
		if env["HTTPS_PROXY"] == "" || env["HTTPS_PROXY"] != st.ProxyURL {
			t.Fatalf("env has no HTTPS_PROXY for the proxy %q", st.ProxyURL)
		}
		cli := exec.Command(awsBin, "kms", "create-key", "--description", "through the proxy", "--output", "json")
		cli.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
		for k, v := range env {
			if k != "AWS_ENDPOINT_URL" {
				cli.Env = append(cli.Env, k+"="+v)
			}
		}
		cliOut, err := cli.CombinedOutput()
		if err != nil || !strings.Contains(string(cliOut), `"KeyId"`) {
			t.Errorf("aws kms create-key through the proxy: %v\n%s", err, cliOut)
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

// parseExports reads the export lines `sandbox env` prints.
func parseExports(t *testing.T, out string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		env[k] = strings.Trim(v, "'")
	}
	return env
}

// agentEndpointHost parses an endpoint of amazon-ssm-agent.json the way
// the real agent does (SESSION-PROTOCOL.md §9.1, §11.19): url.Parse, a
// scheme is required, and only the host[:port] is kept; the agent then
// always speaks https and wss to it.
func agentEndpointHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q has no scheme or host: the agent would fall back to the AWS endpoint", raw)
	}
	return u.Host, nil
}

// registerThroughAgentConfig reads the agent configuration a --tls sandbox
// writes, parses every endpoint as the real agent does, and registers an
// agent with it using only the environment `sandbox env` printed: the
// CustomIdentity's instance id, UpdateInstanceInformation through
// Ssm.Endpoint with the environment's credentials and CA, and the control
// channel through Mgs.Endpoint. The node must then be Online.
func registerThroughAgentConfig(t *testing.T, path string, env map[string]string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("agent config mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Identity struct {
			ConsumptionOrder []string
			CustomIdentities []struct{ InstanceID, Region, CredentialsProvider string }
		}
		Mgs, Ssm, Mds, Kms, S3 struct{ Endpoint string }
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{}
	for name, ep := range map[string]string{"Mgs": cfg.Mgs.Endpoint, "Ssm": cfg.Ssm.Endpoint, "Mds": cfg.Mds.Endpoint, "Kms": cfg.Kms.Endpoint, "S3": cfg.S3.Endpoint} {
		h, err := agentEndpointHost(ep)
		if err != nil {
			t.Errorf("%s.Endpoint: %v", name, err)
		}
		hosts[name] = h
	}
	if len(cfg.Identity.ConsumptionOrder) != 1 || cfg.Identity.ConsumptionOrder[0] != "CustomIdentity" || len(cfg.Identity.CustomIdentities) != 1 {
		t.Fatalf("identity: %s", b)
	}
	ident := cfg.Identity.CustomIdentities[0]
	if !strings.HasPrefix(ident.InstanceID, "mi-") || ident.CredentialsProvider != "DEFAULT" {
		t.Fatalf("identity: %+v", ident)
	}
	if t.Failed() {
		return
	}

	// What the agent's process has: the environment `sandbox env` printed.
	pem, err := os.ReadFile(env["SSL_CERT_FILE"])
	if err != nil {
		t.Fatalf("SSL_CERT_FILE: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("SSL_CERT_FILE holds no certificate")
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	creds := credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ssmc := ssm.New(ssm.Options{Region: ident.Region, Credentials: creds, BaseEndpoint: aws.String("https://" + hosts["Ssm"]),
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}})
	// UpdateInstanceInformation is not in the SDK's public model: sign it
	// by hand, as the agent's own SDK does.
	body := fmt.Sprintf(`{"AgentName":"amazon-ssm-agent","AgentVersion":"3.3.1142.0","InstanceId":%q,"PlatformType":"Linux"}`, ident.InstanceID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+hosts["Ssm"]+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	sandboxtest.SignWith(t, creds, ident.Region, "ssm", req, []byte(body))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("UpdateInstanceInformation through Ssm.Endpoint: %v", err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("UpdateInstanceInformation: HTTP %d %s", resp.StatusCode, rb)
	}
	a := agent.New(agent.Config{InstanceID: ident.InstanceID, Region: ident.Region, AgentVersion: "3.3.1142.0",
		Endpoint: "https://" + hosts["Mgs"], TLSConfig: tlsCfg, Credentials: creds})
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		_ = a.Close()
		<-done
	}()
	for {
		out, err := ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("InstanceIds"), Values: []string{ident.InstanceID}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.InstanceInformationList) == 1 && out.InstanceInformationList[0].PingStatus == ssmtypes.PingStatusOnline {
			i := out.InstanceInformationList[0]
			if aws.ToString(i.AgentVersion) != "3.3.1142.0" || i.ResourceType != ssmtypes.ResourceTypeManagedInstance {
				t.Errorf("registered node: %+v", i)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent never became Online: %+v", out.InstanceInformationList)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
