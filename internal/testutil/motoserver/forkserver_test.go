package motoserver

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/moto"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

// forkServer returns the socket of a running fork server: the run's own ($SSMKIT_MOTO_FORKSERVER,
// set by scripts/test.sh) or one started for this test from forkserver.py.
func forkServer(t *testing.T) string {
	t.Helper()
	if socket := os.Getenv(EnvForkServer); socket != "" {
		return socket
	}
	python := os.Getenv(moto.EnvPython)
	if python == "" {
		p, err := exec.LookPath("python3")
		if err != nil {
			testutil.MissingTool(t, "python3 is not installed; %s", testutil.InstallMoto)
		}
		python = p
	}
	socket := filepath.Join(t.TempDir(), "moto.sock")
	cmd := exec.Command(python, "forkserver.py", socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	// The server says it is ready on stderr once it has warmed up.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "moto fork server ready") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
			if strings.Contains(sc.Text(), "No module named") {
				ready <- &missingError{sc.Text()}
				return
			}
		}
		ready <- io.ErrUnexpectedEOF
	}()
	select {
	case err := <-ready:
		if m, ok := err.(*missingError); ok {
			testutil.MissingTool(t, "moto is not installed (%s); %s", m.line, testutil.InstallMoto)
		}
		if err != nil {
			t.Fatalf("fork server did not start: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("fork server not ready after 3 minutes")
	}
	return socket
}

type missingError struct{ line string }

func (e *missingError) Error() string { return e.line }

// query sends an unsigned EC2 query action to a moto server (moto does not verify signatures).
func query(t *testing.T, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v\n%s", body, resp.StatusCode, err, b)
	}
	return string(b)
}

// TestPrivateFromForkServer: servers from the fork server are fresh and independent, and each
// is gone (port closed, process exited) once its test ends.
func TestPrivateFromForkServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a moto fork server; skipped under -short")
	}
	t.Setenv(EnvForkServer, forkServer(t))
	t.Setenv(EnvURL, "")
	var a, b string
	t.Run("two servers", func(t *testing.T) {
		a, b = Private(t), Private(t)
		if a == b {
			t.Fatalf("two servers at one URL %s", a)
		}
		// Each fork draws its own IDs (first calls of both, so the same number of draws before):
		// the same call in both gives two different VPC IDs.
		idA := vpcID(t, query(t, a, "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.78.0.0/16"))
		idB := vpcID(t, query(t, b, "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.78.0.0/16"))
		if idA == idB {
			t.Errorf("both forked servers created %s: they share a random sequence", idA)
		}
		before := strings.Count(query(t, b, "Action=DescribeVpcs&Version=2016-11-15"), "<vpcId>")
		query(t, a, "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.77.0.0/16")
		if got := query(t, a, "Action=DescribeVpcs&Version=2016-11-15"); !strings.Contains(got, "10.77.0.0/16") {
			t.Errorf("server %s lost the VPC it created:\n%s", a, got)
		}
		if got := query(t, b, "Action=DescribeVpcs&Version=2016-11-15"); strings.Contains(got, "10.77.0.0/16") || strings.Count(got, "<vpcId>") != before {
			t.Errorf("server %s sees state of server %s:\n%s", b, a, got)
		}
		// IAM's managed policies are loaded (the sandbox attaches AmazonSSMManagedInstanceCore).
		req, _ := http.NewRequest(http.MethodPost, a+"/", strings.NewReader("Action=GetPolicy&Version=2010-05-08&PolicyArn=arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GetPolicy AmazonSSMManagedInstanceCore: HTTP %d", resp.StatusCode)
		}
	})
	for _, url := range []string{a, b} {
		if err := moto.Ping(context.Background(), url); err == nil {
			t.Errorf("forked server at %s still answers after its test ended", url)
		}
	}
}

// TestForkServerUnreachable: a socket nobody listens on fails the test, naming the variable.
func TestForkServerUnreachable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	t.Setenv(EnvForkServer, socket)
	r := &testutil.Recorder{TB: t}
	r.Run(func() { Private(r) })
	if failed, _, msg := r.Result(); !failed || !strings.Contains(msg, EnvForkServer) || !strings.Contains(msg, socket) {
		t.Errorf("Private with a dead fork server: failed=%v msg=%q", failed, msg)
	}
}

func vpcID(t *testing.T, createVpc string) string {
	t.Helper()
	_, rest, ok := strings.Cut(createVpc, "<vpcId>")
	id, _, ok2 := strings.Cut(rest, "</vpcId>")
	if !ok || !ok2 || id == "" {
		t.Fatalf("no vpcId in CreateVpc answer:\n%s", createVpc)
	}
	return id
}
