package forward

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
)

// TestForwardReconnectAfterIdleTimeout: the sandbox ends idle sessions
// after idleSessionTimeout (one "minute" of 300 ms here). With --reconnect
// the forward starts a new session on the same local port; without it the
// command ends, printing the service's reason.
func TestForwardReconnectAfterIdleTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "fwd-1"}}, PreferenceMinute: 300 * time.Millisecond})
	ctx := context.Background()
	prefs := `{"schemaVersion":"1.0","description":"idle","sessionType":"Standard_Stream","inputs":{
		"s3BucketName":"","s3KeyPrefix":"","s3EncryptionEnabled":false,"cloudWatchLogGroupName":"",
		"cloudWatchEncryptionEnabled":false,"cloudWatchStreamingEnabled":false,"kmsKeyId":"",
		"runAsEnabled":false,"runAsDefaultUser":"","idleSessionTimeout":"1","maxSessionDuration":"",
		"shellProfile":{"linux":"","windows":""}}}`
	if _, err := ssm.NewFromConfig(sb.AWSConfig()).CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("SSM-SessionManagerRunShell"),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson, Content: aws.String(prefs)}); err != nil {
		t.Fatal(err)
	}
	echo := sessiontest.EchoServer(t)
	_, p, _ := net.SplitHostPort(echo)
	remote, _ := strconv.Atoi(p)
	clients := session.NewClients(sb.AWSConfig())

	run := func(reconnect bool, specs ...Spec) (*testutil.SyncBuffer, *testutil.SyncBuffer, context.CancelFunc, <-chan error) {
		if specs == nil {
			specs = []Spec{{RemotePort: remote}}
		}
		ios, _, _, _ := iostreams.Test()
		var stdout, stderr testutil.SyncBuffer
		ios.Out, ios.ErrOut = &stdout, &stderr
		opts := &ForwardOptions{IO: ios, Target: cmdutil.Target{Arg: "fwd-1"}, JSON: true, Reconnect: reconnect,
			Specs:   specs,
			Clients: func(context.Context) (session.Clients, error) { return clients, nil }}
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- forwardRun(fctx, opts) }()
		return &stdout, &stderr, cancel, done
	}

	t.Run("host name resolved on the node", func(t *testing.T) {
		stdout, stderr, cancel, done := run(false, Spec{Host: "localhost", RemotePort: remote})
		r := readyLines(t, stdout, stderr, 1)[0]
		echoThrough(t, "tcp", r.LocalAddress, "via localhost")
		if r.Remote != net.JoinHostPort("localhost", p) {
			t.Errorf("remote %q", r.Remote)
		}
		cancel()
		<-done
	})
	t.Run("reconnect", func(t *testing.T) {
		stdout, stderr, cancel, done := run(true)
		defer cancel()
		first := readyLines(t, stdout, stderr, 1)[0]
		echoThrough(t, "tcp", first.LocalAddress, "before")
		// Idle: the service ends the session, a new one takes over.
		second := readyLines(t, stdout, stderr, 2)[1]
		if second.SessionID == first.SessionID || second.LocalAddress != first.LocalAddress {
			t.Fatalf("after the idle timeout: %+v then %+v", first, second)
		}
		echoThrough(t, "tcp", first.LocalAddress, "after")
		if !strings.Contains(stderr.String(), "idle timeout") || !strings.Contains(stderr.String(), "starting a new one (--reconnect)") {
			t.Errorf("stderr %q", stderr.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without reconnect", func(t *testing.T) {
		stdout, stderr, cancel, done := run(false)
		defer cancel()
		readyLines(t, stdout, stderr, 1)
		select {
		case err := <-done:
			if err != nil || !strings.Contains(stderr.String(), "idle timeout") {
				t.Fatalf("err %v, stderr %q", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the forward outlived its session")
		}
	})
	sandboxtest.NoActiveSessions(t, sb)
}
