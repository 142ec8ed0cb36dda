package sandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

func TestSandboxBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "bad-1"}}})
	signed := true
	post := func(target, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if signed {
			sandboxtest.Sign(t, sb, req, []byte(body), "ssm")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: not an AWS JSON error (%d): %q", target, resp.StatusCode, b)
		}
		return resp.StatusCode, m
	}
	t.Run("malformed json", func(t *testing.T) {
		code, m := post("AmazonSSM.StartSession", `{"Target":`)
		if code != 400 || m["__type"] == nil || m["message"] == nil {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("missing target", func(t *testing.T) {
		code, m := post("AmazonSSM.StartSession", `{}`)
		if code != 400 || !strings.Contains(m["__type"].(string), "Validation") {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		code, m := post("AmazonSSM.NoSuchAction", `{}`)
		if code < 400 || code >= 500 || m["__type"] == nil {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("unsigned request", func(t *testing.T) {
		signed = false
		defer func() { signed = true }()
		code, m := post("AmazonSSM.DescribeInstanceInformation", `{}`)
		if code != 400 || m["__type"] != "MissingAuthenticationTokenException" {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("data channel with a wrong token", func(t *testing.T) {
		out, err := ssm.NewFromConfig(sb.AWSConfig()).StartSession(context.Background(), &ssm.StartSessionInput{Target: aws.String(sb.Instances()[0].ID)})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := transport.Dial(context.Background(), aws.ToString(out.StreamUrl), transport.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		open, _ := json.Marshal(wire.OpenDataChannelInput{MessageSchemaVersion: "1.0", RequestID: "r", TokenValue: "not-the-token", ClientID: "c", ClientVersion: "1.2.677.0"})
		if err := conn.WriteText(open); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := conn.ReadMessage(); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a frame arrived on a data channel opened with a wrong token")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the data channel stayed open with a wrong token")
		}
	})
}

// TestClientDisappears: the client vanishes mid-session without a word; the
// service ends the session at the idle timeout and the agent's shell is
// killed — no process or session is left behind.
func TestClientDisappears(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "gone"}}, PreferenceMinute: 200 * time.Millisecond})
	c, ssmc := clients(sb)
	ctx := context.Background()
	// 20 "minutes" of 200 ms: a 4 s idle timeout, long enough for the shell to start and answer
	// on a loaded machine (1 "minute", 200 ms, sometimes ended the session before its first
	// output), short enough to watch the service end it after the client vanishes.
	prefs := `{"schemaVersion":"1.0","description":"prefs","sessionType":"Standard_Stream","inputs":{"idleSessionTimeout":"20"}}`
	if _, err := ssmc.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("SSM-SessionManagerRunShell"),
		DocumentType: ssmtypes.DocumentTypeSession, Content: aws.String(prefs)}); err != nil {
		t.Fatal(err)
	}
	inst := sb.Instances()[0]
	s := open(t, c, session.StartRequest{Target: inst.ID})
	inR, inW := io.Pipe()
	var out testutil.SyncBuffer
	go session.RunShell(context.Background(), s, session.ShellIO{Stdin: inR, Stdout: &out, Stderr: io.Discard})
	io.WriteString(inW, "echo PID=$$\n")
	re := regexp.MustCompile(`PID=(\d+)`)
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(inst.Sessions()) != 1 {
		t.Fatalf("agent sessions %v", inst.Sessions())
	}
	s.Close() // vanish: no TerminateSession, no exit
	deadline = time.Now().Add(15 * time.Second)
	for {
		gone := syscall.Kill(pid, 0) != nil
		if gone && len(inst.Sessions()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shell %d alive=%v, agent sessions %v after the client vanished", pid, !gone, inst.Sessions())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
