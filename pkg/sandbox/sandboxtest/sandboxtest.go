// Package sandboxtest starts an in-process ssmkit sandbox for a test, with
// cleanup. Any test that needs Session Manager calls Start.
package sandboxtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
)

// Start brings up a sandbox with opts (three healthy instances when
// opts.Instances is nil) and stops it when the test ends. Each sandbox gets
// a private moto server (unless opts.MotoURL names one): moto's state is
// global, and tests create the same named resources. It skips the test
// when moto is not installed (fails it with SSMKIT_CI=1).
func Start(tb testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	tb.Helper()
	if opts.Instances == nil {
		opts.Instances = []sandbox.InstanceSpec{{Name: "web-1"}, {Name: "web-2"}, {Name: "web-3"}}
	}
	if opts.MotoURL == "" {
		opts.MotoURL = motoserver.Private(tb)
	}
	if opts.StateDir == "" {
		opts.StateDir = tb.TempDir()
	}
	if opts.Logf == nil && testing.Verbose() {
		opts.Logf = tb.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		tb.Fatalf("starting the sandbox: %v", err)
	}
	tb.Cleanup(func() { sb.Close() })
	if err := sb.WaitReady(ctx); err != nil {
		tb.Fatalf("sandbox agents: %v", err)
	}
	return sb
}

// NoActiveSessions fails the test unless the sandbox lists no active
// session (DescribeSessions, State Active) within a few seconds: sessions
// end on the service shortly after their clients go.
func NoActiveSessions(tb testing.TB, sb *sandbox.Sandbox) {
	tb.Helper()
	ssmc := ssm.NewFromConfig(sb.AWSConfig())
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := ssmc.DescribeSessions(context.Background(), &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
		if err != nil {
			tb.Fatalf("listing active sessions: %v", err)
		}
		if len(out.Sessions) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d sessions left active, e.g. %s", len(out.Sessions), aws.ToString(out.Sessions[0].SessionId))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Sign adds SigV4 headers to req, whose body is body, with the sandbox's
// credentials for service (for example "ssm" for a hand-made AWS JSON call
// the SDK does not model, such as UpdateInstanceInformation). The sandbox
// refuses requests that are not signed.
func Sign(tb testing.TB, sb *sandbox.Sandbox, req *http.Request, body []byte, service string) {
	tb.Helper()
	SignWith(tb, sb.Credentials(), sb.Region(), service, req, body)
}

// SignWith signs req with other credentials (minted through the sandbox,
// or taken from `sandbox env`).
func SignWith(tb testing.TB, creds aws.CredentialsProvider, region, service string, req *http.Request, body []byte) {
	tb.Helper()
	c, err := creds.Retrieve(req.Context())
	if err != nil {
		tb.Fatalf("credentials: %v", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(req.Context(), c, req, hex.EncodeToString(sum[:]), service, region, time.Now()); err != nil {
		tb.Fatalf("signing %s %s: %v", req.Method, req.URL.Path, err)
	}
}
