package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestAuth: who may use the sandbox and how, on one sandbox (each costs a
// moto server).
func TestAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "auth-1"}}, Proxy: true})
	t.Run("proxy", func(t *testing.T) { proxy(t, sb) })
	t.Run("signatures on every endpoint", func(t *testing.T) { signaturesOnEveryEndpoint(t, sb) })
	t.Run("minted credentials", func(t *testing.T) { mintedCredentials(t, sb) })
	t.Run("presigned URL", func(t *testing.T) { presignedS3(t, sb) })
	t.Run("body limit", func(t *testing.T) { bodyLimit(t, sb) })
}

// signaturesOnEveryEndpoint: the sandbox's own JSON APIs, the REST and
// query APIs it passes to moto, and the ssmmessages REST calls all refuse
// requests that are unsigned or signed with anything but this run's
// credentials, with AWS's error codes; nothing refused reaches moto.
func signaturesOnEveryEndpoint(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	good := sb.AWSConfig()
	for name, creds := range map[string]aws.CredentialsProvider{
		"wrong secret": credentials.NewStaticCredentialsProvider(mustCreds(t, sb).AccessKeyID, "not-the-secret", ""),
		"unknown key":  credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	} {
		bad := good.Copy()
		bad.Credentials = creds
		bad.RetryMaxAttempts = 1
		wrongKey := name == "unknown key"
		t.Run(name, func(t *testing.T) {
			_, err := ssm.NewFromConfig(bad).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
			if want := map[bool]string{true: "UnrecognizedClientException", false: "InvalidSignatureException"}[wrongKey]; errCode(err) != want {
				t.Errorf("ssm (sandbox JSON API): %v, want %s", err, want)
			}
			_, err = ec2.NewFromConfig(bad).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			if want := map[bool]string{true: "AuthFailure", false: "SignatureDoesNotMatch"}[wrongKey]; errCode(err) != want {
				t.Errorf("ec2 (query, to moto): %v, want %s", err, want)
			}
			_, err = iam.NewFromConfig(bad).ListRoles(ctx, &iam.ListRolesInput{})
			if want := map[bool]string{true: "InvalidClientTokenId", false: "SignatureDoesNotMatch"}[wrongKey]; errCode(err) != want {
				t.Errorf("iam (query, to moto): %v, want %s", err, want)
			}
			_, err = s3.NewFromConfig(bad, func(o *s3.Options) { o.UsePathStyle = true }).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("never-" + strings.ToLower(strings.ReplaceAll(name, " ", "-")))})
			if want := map[bool]string{true: "InvalidAccessKeyId", false: "SignatureDoesNotMatch"}[wrongKey]; errCode(err) != want {
				t.Errorf("s3 (REST-XML, to moto): %v, want %s", err, want)
			}
		})
	}
	// Nothing refused reached moto.
	out, err := s3.NewFromConfig(good, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range out.Buckets {
		if strings.HasPrefix(aws.ToString(b.Name), "never-") {
			t.Errorf("a refused CreateBucket reached moto: %s", aws.ToString(b.Name))
		}
	}

	t.Run("ssmmessages REST", func(t *testing.T) {
		id := sb.Instances()[0].ID
		body := `{"MessageSchemaVersion":"1.0","RequestId":"0d4c1f2e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"}`
		req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/v1/control-channel/"+id, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" || bytes.Contains(b, []byte("TokenValue")) {
			t.Errorf("unsigned CreateControlChannel: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
		}
		// Signed, it gets a token; the agent of the instance keeps its channel.
		req, _ = http.NewRequest(http.MethodPost, sb.URL()+"/v1/control-channel/"+id, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sandboxtest.Sign(t, sb, req, []byte(body), "ssmmessages")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("signed CreateControlChannel: %d", resp.StatusCode)
		}
		// A control channel opened with a made-up token is refused.
		conn, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(sb.URL(), "http")+"/v1/control-channel/"+id+"?role=subscribe&stream=input", transport.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		open, _ := json.Marshal(wire.OpenControlChannelInput{MessageSchemaVersion: "1.0", RequestID: "r", TokenValue: "forged", AgentVersion: "3.3.1142.0", PlatformType: "linux"})
		if err := conn.WriteText(open); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ReadMessage(); err == nil {
			t.Error("a control channel opened with a forged token got a frame")
		}
		if !sb.Instances()[0].Online() {
			t.Error("the instance's own agent lost its control channel")
		}
		// A websocket upgrade with a bad signature is refused outright.
		_, err = transport.Dial(ctx, "ws"+strings.TrimPrefix(sb.URL(), "http")+"/v1/control-channel/"+id+"?role=subscribe&stream=input",
			transport.DialOptions{Header: http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=" + mustCreds(t, sb).AccessKeyID +
				"/20260101/us-east-1/ssmmessages/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}, "X-Amz-Date": {time.Now().UTC().Format("20060102T150405Z")}}})
		if err == nil {
			t.Error("a websocket upgrade with a wrong signature was accepted")
		}
	})
}

func mustCreds(t *testing.T, sb *sandbox.Sandbox) aws.Credentials {
	t.Helper()
	c, err := sb.Credentials().Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mintedCredentials: credentials that STS and IAM (answered by moto) mint
// through the sandbox are accepted; a role in another account sees that
// account's view of the sandbox's own APIs.
func mintedCredentials(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	cfg := sb.AWSConfig()

	// IAM CreateAccessKey.
	ic := iam.NewFromConfig(cfg)
	if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	key, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("bob")})
	if err != nil {
		t.Fatal(err)
	}
	bob := cfg.Copy()
	bob.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
	out, err := ssm.NewFromConfig(bob).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 1 {
		t.Fatalf("bob's key: %v (%d instances)", err, len(out.InstanceInformationList))
	}

	// STS AssumeRole into another account: moto maps the keys to it, and
	// so does the sandbox.
	const other = "210987654321"
	role, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + other + ":role/Audit"), RoleSessionName: aws.String("audit")})
	if err != nil {
		t.Fatal(err)
	}
	audit := cfg.Copy()
	audit.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(role.Credentials.AccessKeyId), aws.ToString(role.Credentials.SecretAccessKey), aws.ToString(role.Credentials.SessionToken))
	who, err := sts.NewFromConfig(audit).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Account) != other {
		t.Fatalf("assumed role identity: %v %+v", err, who)
	}
	ac := ssm.NewFromConfig(audit)
	out, err = ac.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 0 {
		t.Fatalf("the other account sees the default account's nodes: %v %+v", err, out)
	}
	// A node registered with the other account's credentials is in its view
	// only.
	body := []byte(`{"InstanceId":"mi-0123456789abcdef0","AgentName":"amazon-ssm-agent","AgentVersion":"3.3.1142.0","PlatformType":"Linux"}`)
	req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	sandboxtest.SignWith(t, audit.Credentials, sb.Region(), "ssm", req, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("UpdateInstanceInformation as the other account: %d", resp.StatusCode)
	}
	out, err = ac.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 1 || out.InstanceInformationList[0].ResourceType != ssmtypes.ResourceTypeManagedInstance {
		t.Fatalf("the other account's view: %v %+v", err, out)
	}
	out, err = ssm.NewFromConfig(cfg).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil || len(out.InstanceInformationList) != 1 || aws.ToString(out.InstanceInformationList[0].InstanceId) == "mi-0123456789abcdef0" {
		t.Fatalf("the default account's view: %v %+v", err, out)
	}
	// The session token is part of the credential.
	stripped := cfg.Copy()
	stripped.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(role.Credentials.AccessKeyId), aws.ToString(role.Credentials.SecretAccessKey), "")
	if _, err := ssm.NewFromConfig(stripped).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); errCode(err) != "UnrecognizedClientException" {
		t.Errorf("an assumed-role key without its token: %v", err)
	}
}

// presignedS3 fetches an object through a presigned URL, as the AWS CLI
// (aws s3 presign) and SDKs hand them out.
func presignedS3(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	c := s3.NewFromConfig(sb.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("presign")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("presign"), Key: aws.String("a b/c.txt"), Body: strings.NewReader("presigned hello")}); err != nil {
		t.Fatal(err)
	}
	get, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("presign"), Key: aws.String("a b/c.txt")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "presigned hello" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(strings.Replace(get.URL, "presign/", "presign/x", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a presigned URL for another key: %d", resp.StatusCode)
	}
}

// bodyLimit: a 100 MB upload is refused with a 413 in S3's shape before
// its body is read, and nothing reaches moto.
func bodyLimit(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	c := s3.NewFromConfig(sb.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	const size = 100 << 20
	var sent countingReader
	sent.r = io.LimitReader(zeros{}, size)
	req, _ := http.NewRequest(http.MethodPut, sb.URL()+"/big/blob", &sent)
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	sandboxtest.Sign(t, sb, req, nil, "s3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte("<Code>EntityTooLarge</Code>")) || !bytes.Contains(b, []byte("--max-request-body")) {
		t.Errorf("100 MB PUT: %d %s", resp.StatusCode, b)
	}
	if n := sent.n.Load(); n >= size/2 {
		t.Errorf("the client sent %d bytes before the refusal", n)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("blob")}); err == nil {
		t.Error("the refused object reached moto")
	}
	// The sandbox's own JSON APIs have the same limit, in their shape.
	req, _ = http.NewRequest(http.MethodPost, sb.URL()+"/", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("X-Amz-Target", "AmazonSSM.StartSession")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte(`"__type":"RequestEntityTooLargeException"`)) {
		t.Errorf("100 MB StartSession: %d %s", resp.StatusCode, b)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
