package awsapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// opErr wraps an API error the way the SDK does.
func opErr(service, op, code, msg string) error {
	return &smithy.OperationError{
		ServiceID:     service,
		OperationName: op,
		Err:           &smithy.GenericAPIError{Code: code, Message: msg},
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string // substrings the hint must contain; nil means no hint
	}{
		{
			name: "AccessDeniedException names the action",
			err: opErr("SSM", "StartSession", "AccessDeniedException",
				"User: arn:aws:iam::123456789012:user/bob is not authorized to perform: ssm:StartSession on resource: arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"),
			want: []string{"ssm:StartSession", "IAM permission"},
		},
		{
			name: "AccessDenied without an action falls back to the operation",
			err:  opErr("IAM", "GetRole", "AccessDenied", "Access denied"),
			want: []string{"probably iam:GetRole"},
		},
		{
			name: "UnauthorizedOperation from EC2",
			err: opErr("EC2", "DescribeInstances", "UnauthorizedOperation",
				"You are not authorized to perform this operation. User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action"),
			want: []string{"ec2:DescribeInstances"},
		},
		{
			name: "explicit deny",
			err: opErr("KMS", "Decrypt", "AccessDeniedException",
				"User: arn:aws:iam::1:user/u is not authorized to perform: kms:Decrypt on resource: k with an explicit deny in a service control policy"),
			want: []string{"kms:Decrypt", "explicitly denied"},
		},
		{
			name: "access denied on an unmapped service",
			err:  opErr("S3", "ListObjectsV2", "AccessDenied", "Access Denied"),
			want: []string{"IAM permission"},
		},
		{
			name: "TargetNotConnected names the target",
			err:  opErr("SSM", "StartSession", "TargetNotConnected", "i-0123456789abcdef0 is not connected."),
			want: []string{"not connected", "ssmkit doctor i-0123456789abcdef0"},
		},
		{
			name: "TargetNotConnected for a hybrid node",
			err:  opErr("SSM", "StartSession", "TargetNotConnected", "mi-0123456789abcdef0 is not connected."),
			want: []string{"ssmkit doctor mi-0123456789abcdef0"},
		},
		{
			name: "TargetNotConnected without a target",
			err:  opErr("SSM", "StartSession", "TargetNotConnected", ""),
			want: []string{"ssmkit doctor <target>"},
		},
		{
			name: "InvalidInstanceId",
			err:  opErr("SSM", "SendCommand", "InvalidInstanceId", "Instances [[i-0123456789abcdef0]] not in a valid state"),
			want: []string{"--region", "ssmkit doctor i-0123456789abcdef0"},
		},
		{
			name: "InvalidDocument",
			err:  opErr("SSM", "StartSession", "InvalidDocument", "Document SSM-Foo does not exist"),
			want: []string{"document", "--region"},
		},
		{name: "ExpiredToken", err: opErr("STS", "GetCallerIdentity", "ExpiredToken", "The security token included in the request is expired"), want: []string{"expired", "aws sso login"}},
		{name: "ExpiredTokenException", err: opErr("SSM", "StartSession", "ExpiredTokenException", "The security token included in the request is expired"), want: []string{"expired", "aws sso login"}},
		{name: "UnrecognizedClientException", err: opErr("SSM", "StartSession", "UnrecognizedClientException", "The security token included in the request is invalid."), want: []string{"access key", "AWS_SESSION_TOKEN"}},
		{name: "InvalidClientTokenId", err: opErr("STS", "GetCallerIdentity", "InvalidClientTokenId", "The security token included in the request is invalid."), want: []string{"access key"}},
		{name: "SignatureDoesNotMatch", err: opErr("STS", "GetCallerIdentity", "SignatureDoesNotMatch", "bad"), want: []string{"secret access key"}},
		{name: "clock skew", err: opErr("SSM", "StartSession", "InvalidSignatureException", "Signature expired: 20240101T000000Z is now earlier than ..."), want: []string{"clock"}},
		{name: "ThrottlingException", err: opErr("SSM", "DescribeInstanceInformation", "ThrottlingException", "Rate exceeded"), want: []string{"throttling"}},
		{name: "RequestLimitExceeded", err: opErr("EC2", "DescribeInstances", "RequestLimitExceeded", "Request limit exceeded."), want: []string{"throttling"}},
		{
			name: "wrapped by a command",
			err:  fmt.Errorf("starting session on i-0123456789abcdef0: %w", opErr("SSM", "StartSession", "TargetNotConnected", "i-0123456789abcdef0 is not connected.")),
			want: []string{"ssmkit doctor i-0123456789abcdef0"},
		},
		{name: "SDK missing region", err: &aws.MissingRegionError{}, want: []string{"--region", "AWS_REGION"}},
		{name: "endpoint rules missing region", err: errors.New("endpoint rule error, Invalid Configuration: Missing Region"), want: []string{"--region"}},
		{
			name: "credential resolution",
			err:  &smithy.OperationError{ServiceID: "SSM", OperationName: "StartSession", Err: errors.New("get identity: failed to refresh cached credentials, no EC2 IMDS role found")},
			want: []string{"no usable AWS credentials", "--profile"},
		},
		{
			name: "SSO session expired",
			err:  fmt.Errorf("get identity: failed to refresh cached credentials, %w", &ssocreds.InvalidTokenError{}),
			want: []string{"aws sso login"},
		},
		{
			name: "connection refused",
			err:  &smithy.OperationError{ServiceID: "SSM", OperationName: "StartSession", Err: &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}},
			want: []string{"refused", "--endpoint-url"},
		},
		{name: "DNS failure", err: &net.DNSError{Err: "no such host", Name: "ssm.xx-nowhere-1.amazonaws.com"}, want: []string{"ssm.xx-nowhere-1.amazonaws.com", "--region"}},
		{name: "unknown API error", err: opErr("SSM", "StartSession", "SomethingNew", "hm")},
		{name: "plain error", err: errors.New("boom")},
		{name: "nil", err: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Hint(tt.err)
			if tt.want == nil {
				if got != "" {
					t.Errorf("Hint = %q, want none", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Hint = %q, want it to contain %q", got, w)
				}
			}
			if strings.ContainsAny(got, "\n\r") {
				t.Errorf("Hint must be one line, got %q", got)
			}
		})
	}
}

// TestHintOnRealFailures drives the SDK into failures instead of building
// the errors by hand, so that the string matching stays honest as the SDK
// changes.
func TestHintOnRealFailures(t *testing.T) {
	t.Run("no credentials", func(t *testing.T) {
		isolate(t, "")
		rec := &recorder{}
		srv := rec.serve(t)
		cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewSSM(cfg).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
		if err == nil {
			t.Fatal("want a credentials error")
		}
		if h := Hint(err); !strings.Contains(h, "no usable AWS credentials") {
			t.Errorf("Hint(%v) = %q", err, h)
		}
		if rec.count() != 0 {
			t.Error("request sent without credentials")
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		isolate(t, "")
		staticCreds(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: "http://" + addr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewSSM(cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 }).
			DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
		if err == nil {
			t.Fatal("want a connection error")
		}
		if h := Hint(err); !strings.Contains(h, "refused") {
			t.Errorf("Hint(%v) = %q", err, h)
		}
		if s := Summarize(err); !strings.HasPrefix(s, "SSM DescribeInstanceInformation: dial tcp") {
			t.Errorf("Summarize = %q", s)
		}
	})
}

// TestHintOnEmpty404: an endpoint that answers 404 with an empty body (a
// wrong --endpoint-url, a path-routed proxy, the wrong service) was shown
// as "UnknownError: UnknownError". It must show the HTTP status and point
// at the endpoint and region.
func TestHintOnEmpty404(t *testing.T) {
	isolate(t, "")
	staticCreds(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"SSM DescribeInstanceInformation": func() error {
			_, err := NewSSM(cfg).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
			return err
		},
		"EC2 DescribeInstances": func() error {
			_, err := NewEC2(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		},
		"CloudWatch Logs GetLogEvents": func() error {
			_, err := NewCloudWatchLogs(cfg).GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")})
			return err
		},
	}
	for op, call := range calls {
		err := call()
		if err == nil {
			t.Fatalf("%s: want an error from a 404", op)
		}
		s := Summarize(err)
		if strings.Contains(s, "UnknownError") || !strings.Contains(s, op+": HTTP 404 Not Found") {
			t.Errorf("%s: Summarize = %q", op, s)
		}
		if h := Hint(err); !strings.Contains(h, "--endpoint-url") || !strings.Contains(h, "--region") || !strings.Contains(h, "404") {
			t.Errorf("%s: Hint = %q", op, h)
		}
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "API error",
			err:  opErr("SSM", "StartSession", "TargetNotConnected", "i-1 is not connected."),
			want: "SSM StartSession: TargetNotConnected: i-1 is not connected.",
		},
		{
			name: "context around it is kept",
			err:  fmt.Errorf("starting session on i-1: %w", opErr("SSM", "StartSession", "TargetNotConnected", "i-1 is not connected.")),
			want: "starting session on i-1: SSM StartSession: TargetNotConnected: i-1 is not connected.",
		},
		{
			name: "API error without a message",
			err:  opErr("SSM", "StartSession", "ThrottlingException", ""),
			want: "SSM StartSession: ThrottlingException",
		},
		{name: "multi-line", err: errors.New("first\n\nsecond\r\nthird "), want: "first; second; third"},
		{name: "plain", err: errors.New("boom"), want: "boom"},
		{name: "nil", err: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.err); got != tt.want {
				t.Errorf("Summarize = %q, want %q", got, tt.want)
			}
		})
	}
}
