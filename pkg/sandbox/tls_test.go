package sandbox_test

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// TestSandboxTLS: with TLS on, the endpoint speaks https/wss with a
// certificate from the CA it wrote, agents connect over wss, and a client
// that trusts only that CA runs a shell.
func TestSandboxTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{TLS: true, Instances: []sandbox.InstanceSpec{{Name: "tls-1"}}})
	if !strings.HasPrefix(sb.URL(), "https://127.0.0.1:") {
		t.Fatalf("url %s", sb.URL())
	}
	pem, err := os.ReadFile(sb.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	env := strings.Join(sb.Env(), "\n")
	if !strings.Contains(env, "AWS_CA_BUNDLE="+sb.CAFile()) || !strings.Contains(env, "SSL_CERT_FILE="+sb.CAFile()) {
		t.Fatalf("env lacks the CA: %s", env)
	}
	c, ssmc := clients(sb)
	out, err := ssmc.StartSession(context.Background(), &ssm.StartSessionInput{Target: &sb.Instances()[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*out.StreamUrl, "wss://") {
		t.Fatalf("stream url %s", *out.StreamUrl)
	}
	s := open(t, c, session.StartRequest{Target: sb.Instances()[0].ID})
	shellRun(t, s, "echo tls-$((40+2))\n", "tls-42")
}
