package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// gate is a verifying server in front of a handler that records the
// caller of each request it lets through.
type gate struct {
	srv     *httptest.Server
	store   *Store
	root    Credential
	now     time.Time
	reached atomic.Int32
	caller  atomic.Pointer[Caller]
}

func newGate(t *testing.T, maxBody int64) *gate {
	t.Helper()
	g := &gate{root: NewRootCredential(""), now: time.Now()}
	g.store = NewStore(g.root)
	v := &Verifier{Store: g.store, Now: func() time.Time { return g.now }}
	g.srv = httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.reached.Add(1)
		g.caller.Store(CallerFrom(r.Context()))
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{"InstanceInformationList":[]}`))
	}), maxBody))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gate) ssm(akid, secret, token string) *ssm.Client {
	return ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(g.srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token)})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// signed builds a request signed with cred at t.
func signed(t *testing.T, method, url, target, body string, cred Credential, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey, SessionToken: cred.SessionToken},
		req, hex.EncodeToString(sum[:]), "ssm", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSDKClientsAreVerified(t *testing.T) {
	g := newGate(t, 0)
	ctx := context.Background()
	if _, err := g.ssm(g.root.AccessKeyID, g.root.SecretAccessKey, "").DescribeInstanceInformation(ctx, nil); err != nil {
		t.Fatalf("correctly signed: %v", err)
	}
	if c := g.caller.Load(); c == nil || c.AccountID != DefaultAccountID || c.AccessKeyID != g.root.AccessKeyID || c.Name != "ssmkit-sandbox" {
		t.Errorf("caller = %+v", c)
	}
	before := g.reached.Load()
	_, err := g.ssm(g.root.AccessKeyID, "wrong-secret", "").DescribeInstanceInformation(ctx, nil)
	if apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	_, err = g.ssm("AKIAUNKNOWNUNKNOWN00", g.root.SecretAccessKey, "").DescribeInstanceInformation(ctx, nil)
	if apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}
	_, err = g.ssm(g.root.AccessKeyID, g.root.SecretAccessKey, "made-up-token").DescribeInstanceInformation(ctx, nil)
	if apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("token on a long-term key: %v", err)
	}
	if g.reached.Load() != before {
		t.Errorf("refused requests reached the handler")
	}
	if strings.Contains(err.Error(), g.root.SecretAccessKey) {
		t.Errorf("error holds the secret: %v", err)
	}
}

func TestRawRequests(t *testing.T) {
	g := newGate(t, 0)
	url := g.srv.URL + "/"
	const target, body = "AmazonSSM.DescribeInstanceInformation", `{}`

	// No signature at all.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	code, out := do(t, req)
	if code != 400 || !strings.Contains(out, `"__type":"MissingAuthenticationTokenException"`) {
		t.Errorf("unsigned: %d %s", code, out)
	}

	// A bare or truncated Authorization header.
	for _, auth := range []string{"AWS4-HMAC-SHA256 Credential=" + g.root.AccessKeyID + "/20240101/us-east-1/ssm/aws4_request",
		"AWS AKID:sig", "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00"} {
		req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("X-Amz-Date", g.now.UTC().Format(amzDateFormat))
		req.Header.Set("Authorization", auth)
		if code, out = do(t, req); code != 400 || !strings.Contains(out, `"__type":"IncompleteSignatureException"`) {
			t.Errorf("%q: %d %s", auth, code, out)
		}
	}

	// A body changed after signing.
	req = signed(t, http.MethodPost, url, target, body, g.root, g.now)
	req.Body = io.NopCloser(strings.NewReader(`{"MaxResults":5}`))
	req.ContentLength = int64(len(`{"MaxResults":5}`))
	if code, out = do(t, req); code != 400 || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("tampered body: %d %s", code, out)
	}

	// Clock skew: 14 minutes either way is accepted, 16 is not.
	for _, d := range []time.Duration{-14 * time.Minute, 14 * time.Minute} {
		if code, out = do(t, signed(t, http.MethodPost, url, target, body, g.root, g.now.Add(d))); code != 200 {
			t.Errorf("skew %v: %d %s", d, code, out)
		}
	}
	for _, d := range []time.Duration{-16 * time.Minute, 16 * time.Minute} {
		if code, out = do(t, signed(t, http.MethodPost, url, target, body, g.root, g.now.Add(d))); code != 400 || !strings.Contains(out, "Signature expired") {
			t.Errorf("skew %v: %d %s", d, code, out)
		}
	}

	// Query protocol (STS, IAM) and S3 get their own shapes.
	req = signed(t, http.MethodPost, url, "", "Action=GetCallerIdentity&Version=2011-06-15", Credential{AccessKeyID: "AKIANOBODY", SecretAccessKey: "x"}, g.now)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, out = do(t, req)
	var qe struct {
		Error struct{ Code, Message string }
	}
	if xml.Unmarshal([]byte(out), &qe) != nil || code != 403 || qe.Error.Code != "SignatureDoesNotMatch" && qe.Error.Code != "InvalidClientTokenId" {
		t.Errorf("query: %d %s", code, out)
	}
	req, _ = http.NewRequest(http.MethodGet, g.srv.URL+"/bucket/key", nil)
	code, out = do(t, req)
	if code != 403 || !strings.Contains(out, "<Error><Code>AccessDenied</Code>") {
		t.Errorf("anonymous S3: %d %s", code, out)
	}

	// An unsigned websocket upgrade of a data channel goes through (its
	// token is checked later); an unsigned control-channel POST does not.
	req, _ = http.NewRequest(http.MethodGet, g.srv.URL+"/v1/data-channel/s-1?role=publish_subscribe", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	if code, _ = do(t, req); code != 200 {
		t.Errorf("unsigned data-channel upgrade: %d", code)
	}
	req, _ = http.NewRequest(http.MethodPost, g.srv.URL+"/v1/control-channel/i-1", strings.NewReader(`{"MessageSchemaVersion":"1.0","RequestId":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	code, out = do(t, req)
	var rj map[string]string
	if code != 403 || json.Unmarshal([]byte(out), &rj) != nil || rj["message"] == "" {
		t.Errorf("unsigned CreateControlChannel: %d %s", code, out)
	}
}

func TestPresignedURL(t *testing.T) {
	g := newGate(t, 0)
	ps := s3.NewPresignClient(s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(g.srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(g.root.AccessKeyID, g.root.SecretAccessKey, "")}))
	get, err := ps.PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("dir/a key+x.txt")},
		s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, get.URL, nil)
	if code, out := do(t, req); code != 200 {
		t.Fatalf("presigned GET: %d %s", code, out)
	}
	g.now = g.now.Add(2 * time.Minute)
	if code, out := do(t, req); code != 403 || !strings.Contains(out, "Request has expired") {
		t.Errorf("expired presigned GET: %d %s", code, out)
	}
	g.now = g.now.Add(-2 * time.Minute)
	bad, _ := http.NewRequest(http.MethodGet, strings.Replace(get.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1), nil)
	if code, out := do(t, bad); code != 403 || !strings.Contains(out, "SignatureDoesNotMatch") {
		t.Errorf("altered presigned GET: %d %s", code, out)
	}
}

func TestBodyLimit(t *testing.T) {
	g := newGate(t, 1<<20)
	body := bytes.Repeat([]byte("x"), 2<<20)
	for _, chunked := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPut, g.srv.URL+"/bucket/big", bytes.NewReader(body))
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		code, out := do(t, req)
		if code != 413 || !strings.Contains(out, "<Code>EntityTooLarge</Code>") || !strings.Contains(out, "1048576 bytes") {
			t.Errorf("chunked %v: %d %s", chunked, code, out)
		}
	}
	if g.reached.Load() != 0 {
		t.Errorf("an oversized body reached the handler")
	}
}

func TestRecordMintedCredentials(t *testing.T) {
	store := NewStore(NewRootCredential(""))
	root := &Caller{AccountID: DefaultAccountID, ARN: "arn:aws:iam::123456789012:user/ssmkit-sandbox"}
	assume := `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAOTHER</AccessKeyId><SecretAccessKey>s3cret</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:audit</AssumedRoleId><Arn>arn:aws:sts::222233334444:assumed-role/Audit/audit</Arn></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`
	if n := store.Record(root, []byte(assume)); n != 1 {
		t.Fatalf("recorded %d", n)
	}
	c, ok := store.Lookup("ASIAOTHER")
	if !ok || c.AccountID != "222233334444" || c.SessionToken != "tok" || c.Name() != "audit" {
		t.Errorf("assumed = %+v", c)
	}
	key := `<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>bob</UserName><AccessKeyId>AKIABOB</AccessKeyId>
<Status>Active</Status><SecretAccessKey>bobsecret</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>`
	if n := store.Record(root, []byte(key)); n != 1 {
		t.Fatalf("recorded %d", n)
	}
	if c, ok := store.Lookup("AKIABOB"); !ok || c.ARN != "arn:aws:iam::123456789012:user/bob" || c.SessionToken != "" {
		t.Errorf("access key = %+v", c)
	}
	if n := store.Record(root, []byte(`<DescribeInstancesResponse/>`)); n != 0 {
		t.Errorf("recorded %d from an unrelated answer", n)
	}

	// A recorded session credential works, with its token only.
	g := newGate(t, 0)
	g.store.Record(root, []byte(assume))
	if _, err := g.ssm("ASIAOTHER", "s3cret", "tok").DescribeInstanceInformation(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if c := g.caller.Load(); c.AccountID != "222233334444" {
		t.Errorf("caller account %s", c.AccountID)
	}
	if _, err := g.ssm("ASIAOTHER", "s3cret", "").DescribeInstanceInformation(context.Background(), nil); apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("session credential without its token: %v", err)
	}
}
