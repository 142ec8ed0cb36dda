package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

func clients(sb *sandbox.Sandbox) (session.Clients, *ssm.Client) {
	cfg := sb.AWSConfig()
	c := session.NewClients(cfg)
	c.Dial.TLSConfig = sb.ClientTLS()
	return c, ssm.NewFromConfig(cfg)
}

func open(t *testing.T, c session.Clients, req session.StartRequest) *session.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := session.OpenTarget(ctx, c, req, session.Options{})
	if err != nil {
		t.Fatalf("opening %s on %s: %v", req.DocumentName, req.Target, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// shellRun runs input in a sandbox shell and returns what came back once
// want appears.
func shellRun(t *testing.T, s *session.Session, input, want string) string {
	t.Helper()
	inR, inW := io.Pipe()
	var out testutil.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- session.RunShell(ctx, s, session.ShellIO{Stdin: inR, Stdout: &out, Stderr: io.Discard})
	}()
	io.WriteString(inW, input)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("shell ended before %q: %v; output %q", want, err, out.String())
		case <-ctx.Done():
			t.Fatalf("no %q in %q", want, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	io.WriteString(inW, "exit\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shell: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("shell did not end after exit")
	}
	return out.String()
}

func TestSandboxEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{
		{Name: "web-1", Tags: map[string]string{"env": "dev"}},
		{Name: "old", AgentVersion: "3.0.161.0"},
		{Name: "down", Offline: true},
		{Name: "norole", NoRole: true},
	}})
	c, ssmc := clients(sb)
	ctx := context.Background()
	insts := sb.Instances()
	web, old, down, norole := insts[0].ID, insts[1].ID, insts[2].ID, insts[3].ID

	t.Run("describe instance information", func(t *testing.T) {
		out, err := ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]ssmtypes.PingStatus{}
		for _, i := range out.InstanceInformationList {
			got[aws.ToString(i.InstanceId)] = i.PingStatus
		}
		if got[web] != ssmtypes.PingStatusOnline || got[old] != ssmtypes.PingStatusOnline || got[down] != ssmtypes.PingStatusConnectionLost {
			t.Fatalf("ping status %v", got)
		}
		if _, ok := got[norole]; ok {
			t.Fatal("an instance without a role is managed")
		}
	})

	t.Run("shell", func(t *testing.T) {
		s := open(t, c, session.StartRequest{Target: web})
		out := shellRun(t, s, "echo sandbox-$((6*7))\n", "sandbox-42")
		if !strings.Contains(out, "sandbox-42") {
			t.Fatal(out)
		}
	})

	t.Run("command exit code", func(t *testing.T) {
		// The AWS-owned AWS-StartNonInteractiveCommand with separateOutputStream.
		s := open(t, c, session.CommandRequest(web, "sh -c 'echo out; echo err >&2; exit 7'", false, ""))
		var stdout, stderr bytes.Buffer
		code, err := session.RunCommand(ctx, s, session.CommandIO{Stdout: &stdout, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		if code != 7 || strings.TrimSpace(stdout.String()) != "out" || strings.TrimSpace(stderr.String()) != "err" {
			t.Fatalf("code %d stdout %q stderr %q", code, stdout.String(), stderr.String())
		}
	})

	t.Run("port forwarding, 50 connections over smux", func(t *testing.T) {
		srv := httpServer(t)
		_, port, _ := net.SplitHostPort(srv)
		forwardAndFetch(t, c, web, port, 50)
	})

	t.Run("port forwarding, basic mode for an old agent", func(t *testing.T) {
		srv := httpServer(t)
		_, port, _ := net.SplitHostPort(srv)
		forwardAndFetch(t, c, old, port, 1)
	})

	t.Run("unknown and offline targets", func(t *testing.T) {
		_, err := ssmc.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-00000000000000000")})
		assertCode(t, err, "InvalidInstanceId")
		_, err = ssmc.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(down)})
		assertCode(t, err, "TargetNotConnected")
	})

	t.Run("terminate", func(t *testing.T) {
		s := open(t, c, session.StartRequest{Target: web})
		if _, err := ssmc.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(s.ID())}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("session still open after TerminateSession")
		}
		hist, err := ssmc.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateHistory})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range hist.Sessions {
			found = found || aws.ToString(h.SessionId) == s.ID()
		}
		if !found {
			t.Fatal("terminated session not in history")
		}
	})
}

// TestSandboxPreferences: KMS encryption, idle timeout and transcripts in S3
// and CloudWatch Logs, all driven by SSM-SessionManagerRunShell in moto.
func TestSandboxPreferences(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	// A "minute" lasts 300 ms, so the idle timeout of 20 "minutes" is 6 s: long enough for the
	// KMS shell below to start and run a command on a loaded machine (at 300 ms it sometimes
	// ended for being idle during the handshake), short enough to watch it end.
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "prefs"}},
		PreferenceMinute: 300 * time.Millisecond})
	c, ssmc := clients(sb)
	ctx := context.Background()
	cfg := sb.AWSConfig()
	target := sb.Instances()[0].ID

	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sandbox-transcripts")}); err != nil {
		t.Fatal(err)
	}
	logs := cloudwatchlogs.NewFromConfig(cfg)
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/ssm/sessions")}); err != nil {
		t.Fatal(err)
	}
	prefs := fmt.Sprintf(`{"schemaVersion":"1.0","description":"prefs","sessionType":"Standard_Stream","inputs":{
		"s3BucketName":"sandbox-transcripts","s3KeyPrefix":"logs","s3EncryptionEnabled":false,
		"cloudWatchLogGroupName":"/ssm/sessions","cloudWatchEncryptionEnabled":false,"cloudWatchStreamingEnabled":false,
		"kmsKeyId":%q,"runAsEnabled":false,"runAsDefaultUser":"","idleSessionTimeout":"20","maxSessionDuration":"",
		"shellProfile":{"linux":"","windows":""}}}`, aws.ToString(key.KeyMetadata.KeyId))
	if _, err := ssmc.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("SSM-SessionManagerRunShell"),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson, Content: aws.String(prefs)}); err != nil {
		t.Fatal(err)
	}
	c.KMS = encryption.NewKMSKeyService(kms.NewFromConfig(cfg))

	t.Run("kms shell with transcripts", func(t *testing.T) {
		s := open(t, c, session.StartRequest{Target: target})
		if !s.Info().Encrypted {
			t.Fatal("session not encrypted although kmsKeyId is set")
		}
		shellRun(t, s, "echo transcript-$((2+3))\n", "transcript-5")
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end after exit")
		}
		key := "logs/" + s.ID() + ".log"
		var body []byte
		deadline := time.Now().Add(10 * time.Second)
		for {
			obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sandbox-transcripts"), Key: aws.String(key)})
			if err == nil {
				body, _ = io.ReadAll(obj.Body)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no transcript at s3://sandbox-transcripts/%s: %v", key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(string(body), "transcript-5") {
			t.Fatalf("s3 transcript %q", body)
		}
		ev, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/ssm/sessions"), LogStreamName: aws.String(s.ID())})
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, e := range ev.Events {
			all.WriteString(aws.ToString(e.Message))
		}
		if !strings.Contains(all.String(), "transcript-5") {
			t.Fatalf("cloudwatch transcript %q", all.String())
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := session.OpenTarget(ctx, c, session.StartRequest{Target: target}, session.Options{})
		if err != nil {
			// On a very loaded machine the 6 s can pass before the client is
			// connected: the session still has to end for being idle.
			if !strings.Contains(err.Error(), "idle") {
				t.Fatalf("opening the session: %v", err)
			}
			return
		}
		t.Cleanup(func() { s.Close() })
		select {
		case <-s.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("idle session was not ended (idle timeout 20 'minutes' = 6 s here)")
		}
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "idle") {
			t.Fatalf("session ended with %v, want the idle timeout reason", err)
		}
	})
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// httpServer serves a fixed page on loopback: the "web server on the instance".
func httpServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the instance "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func forwardAndFetch(t *testing.T, c session.Clients, target, port string, n int) {
	t.Helper()
	var p int
	fmt.Sscan(port, &p)
	s := open(t, c, session.PortForwardRequest(target, p, 0, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- session.Forward(ctx, s, session.ForwardOptions{OnReady: func(a net.Addr) { ready <- a }, Stderr: io.Discard})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("forward: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("forward never became ready")
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if n == 1 {
				// Basic mode serves one connection at a time: fetch twice in turn.
				for j := 0; j < 2; j++ {
					if err := fetch(client, addr, fmt.Sprintf("/seq-%d", j)); err != nil {
						errs <- err
					}
				}
				return
			}
			if err := fetch(client, addr, fmt.Sprintf("/conn-%d", i)); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cancel()
	<-done
}

func fetch(client *http.Client, addr net.Addr, path string) error {
	resp, err := client.Get("http://" + addr.String() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if string(b) != "hello from the instance "+path {
		return fmt.Errorf("%s: got %q", path, b)
	}
	return nil
}
