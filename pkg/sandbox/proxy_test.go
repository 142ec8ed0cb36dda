package sandbox_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// proxiedHTTP is an HTTP client that, like a tool ignoring endpoint
// settings, only knows HTTPS_PROXY and the CA from the sandbox's
// environment.
func proxiedHTTP(t *testing.T, sb *sandbox.Sandbox) *http.Client {
	t.Helper()
	env := map[string]string{}
	for _, kv := range sb.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	pu, err := url.Parse(env["HTTPS_PROXY"])
	if err != nil || pu.Host == "" {
		t.Fatalf("HTTPS_PROXY in the sandbox env: %q", env["HTTPS_PROXY"])
	}
	pem, err := os.ReadFile(env["AWS_CA_BUNDLE"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// proxy (in TestAuth): a KMS client with no endpoint setting at all — it
// calls https://kms.us-east-1.amazonaws.com — works through HTTPS_PROXY,
// and so does a KMS-encrypted session whose KMS calls take that path;
// anything but an AWS host is refused with the reason.
func proxy(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	hc := proxiedHTTP(t, sb)
	kmsc := kms.New(kms.Options{Region: sb.Region(), Credentials: sb.Credentials(), HTTPClient: hc, RetryMaxAttempts: 1})

	key, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("through the proxy")})
	if err != nil {
		t.Fatalf("CreateKey via kms.%s.amazonaws.com: %v", sb.Region(), err)
	}
	host := "kms." + sb.Region() + ".amazonaws.com"
	if n := sb.ProxyRequests(host); n != 1 {
		t.Fatalf("%d requests for %s went through the proxy, want 1", n, host)
	}

	t.Run("a KMS session with KMS through the proxy", func(t *testing.T) {
		cfg := sb.AWSConfig()
		prefs := fmt.Sprintf(`{"schemaVersion":"1.0","description":"prefs","sessionType":"Standard_Stream","inputs":{"kmsKeyId":%q}}`, aws.ToString(key.KeyMetadata.KeyId))
		if _, err := ssm.NewFromConfig(cfg).CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("SSM-SessionManagerRunShell"),
			DocumentType: ssmtypes.DocumentTypeSession, Content: aws.String(prefs)}); err != nil {
			t.Fatal(err)
		}
		before := sb.ProxyRequests(host)
		c := session.NewClients(cfg)
		c.KMS = encryption.NewKMSKeyService(kmsc)
		s := open(t, c, session.StartRequest{Target: sb.Instances()[0].ID})
		if !s.Info().Encrypted {
			t.Fatal("the session is not encrypted")
		}
		if got := shellRun(t, s, "echo via-$((6*7))\n", "via-42"); !strings.Contains(got, "via-42") {
			t.Errorf("shell output %q", got)
		}
		if sb.ProxyRequests(host) <= before {
			t.Error("the session's GenerateDataKey did not go through the proxy")
		}
	})

	t.Run("other destinations are refused", func(t *testing.T) {
		proxyAddr := strings.TrimPrefix(sb.ProxyURL(), "http://")
		for _, target := range []string{"example.com:443", "kms.us-east-1.amazonaws.com:80", "amazonaws.com.evil.example:443"} {
			conn, err := net.Dial("tcp", proxyAddr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			conn.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "only AWS endpoints") {
				t.Errorf("CONNECT %s: %d %s", target, resp.StatusCode, b)
			}
		}
		pu, _ := url.Parse(sb.ProxyURL())
		plain := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
		resp, err := plain.Get("http://example.com/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "only tunnels HTTPS") {
			t.Errorf("plain GET through the proxy: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("unsigned calls through the proxy are refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/", strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "MissingAuthenticationTokenException") {
			t.Errorf("unsigned ListKeys: %d %s", resp.StatusCode, b)
		}
	})
}
