package awsapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// awsEnv lists every variable that could leak the developer's own AWS setup
// into a test.
var awsEnv = []string{
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULTS_MODE", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_EC2",
	"AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS",
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
}

// isolate clears the AWS environment, points the shared files at config
// (written to a temp file) and disables IMDS, so that nothing leaves the
// machine. It returns nothing; t.Setenv restores the environment.
func isolate(t *testing.T, config string) {
	t.Helper()
	for _, k := range awsEnv {
		t.Setenv(k, "")
		// The SDK checks presence, not emptiness, of some variables.
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(credFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func staticCreds(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-key-for-tests-only")
	t.Setenv("AWS_SESSION_TOKEN", "fake-session-token-for-tests-only")
}

// recorder is an SSM stand-in that records which server was hit.
type recorder struct {
	mu      sync.Mutex
	targets []string
	headers []http.Header
}

func (r *recorder) serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.targets = append(r.targets, req.Header.Get("X-Amz-Target"))
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", "req-123")
		_, _ = w.Write([]byte(`{"InstanceInformationList":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.targets)
}

func TestLoadConfigRegion(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		env     map[string]string
		opts    Options
		want    string
		wantErr error
	}{
		{name: "flag", opts: Options{Region: "eu-central-1"}, want: "eu-central-1"},
		{name: "AWS_REGION", env: map[string]string{"AWS_REGION": "ap-south-1"}, want: "ap-south-1"},
		{name: "flag wins over AWS_REGION", env: map[string]string{"AWS_REGION": "ap-south-1"}, opts: Options{Region: "us-east-2"}, want: "us-east-2"},
		{name: "profile", config: "[profile dev]\nregion = sa-east-1\n", opts: Options{Profile: "dev"}, want: "sa-east-1"},
		{name: "flag wins over profile", config: "[profile dev]\nregion = sa-east-1\n", opts: Options{Profile: "dev", Region: "eu-west-3"}, want: "eu-west-3"},
		{name: "AWS_PROFILE", config: "[profile dev]\nregion = sa-east-1\n", env: map[string]string{"AWS_PROFILE": "dev"}, want: "sa-east-1"},
		{name: "missing", wantErr: ErrNoRegion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t, tt.config)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := LoadConfig(context.Background(), tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tt.want {
				t.Errorf("Region = %q, want %q", cfg.Region, tt.want)
			}
		})
	}
}

func TestNoRegionErrorCarriesTheFix(t *testing.T) {
	for _, want := range []string{"--region", "AWS_REGION", "profile"} {
		if !strings.Contains(ErrNoRegion.Error(), want) {
			t.Errorf("ErrNoRegion %q does not mention %q", ErrNoRegion, want)
		}
	}
}

func TestLoadConfigUnknownProfile(t *testing.T) {
	isolate(t, "")
	_, err := LoadConfig(context.Background(), Options{Profile: "nope", Region: "us-east-1"})
	if err == nil {
		t.Fatal("want an error for a profile that does not exist")
	}
	if h := Hint(err); !strings.Contains(h, `"nope"`) {
		t.Errorf("Hint = %q, want it to name the profile", h)
	}
}

func TestLoadConfigRetryMode(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantMode  aws.RetryMode
		wantAdapt bool
	}{
		{name: "adaptive by default", wantMode: aws.RetryModeAdaptive, wantAdapt: true},
		{name: "AWS_RETRY_MODE is honoured", env: map[string]string{"AWS_RETRY_MODE": "standard"}, wantMode: aws.RetryModeStandard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1"})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RetryMode != tt.wantMode {
				t.Errorf("RetryMode = %q, want %q", cfg.RetryMode, tt.wantMode)
			}
			_, adaptive := NewSSM(cfg).Options().Retryer.(*retry.AdaptiveMode)
			if adaptive != tt.wantAdapt {
				t.Errorf("ssm retryer adaptive = %v, want %v", adaptive, tt.wantAdapt)
			}
		})
	}
}

// TestLoadConfigHTTPClient: every client LoadConfig configures sends its
// requests through HTTPClient (a fast answer is not lost and retried), and
// the defaults mode's connect and TLS timeouts, which service clients set
// only on a bare buildable client, are still applied.
func TestLoadConfigHTTPClient(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want time.Duration // 30 s: the SDK's own dialer, nothing set
	}{
		{"", 30 * time.Second},
		{"legacy", 30 * time.Second},
		{"standard", 3100 * time.Millisecond},
		{"in-region", 1100 * time.Millisecond},
		{"auto", 3100 * time.Millisecond},
	} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			isolate(t, "")
			if tt.mode != "" {
				t.Setenv("AWS_DEFAULTS_MODE", tt.mode)
			}
			cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1"})
			if err != nil {
				t.Fatal(err)
			}
			w, ok := cfg.HTTPClient.(earlyCloseSafe)
			if !ok {
				t.Fatalf("HTTPClient is %T, not HTTPClient's wrapper", cfg.HTTPClient)
			}
			if got := NewSSM(cfg).Options().HTTPClient; got != cfg.HTTPClient {
				t.Errorf("the SSM client uses %T, not the configured client", got)
			}
			b, ok := w.next.(*awshttp.BuildableClient)
			if !ok {
				t.Fatalf("wrapped client is %T", w.next)
			}
			if got := b.GetDialer().Timeout; got != tt.want {
				t.Errorf("connect timeout %v, want %v", got, tt.want)
			}
			if got := b.GetTransport().TLSHandshakeTimeout; tt.want != 30*time.Second && got != tt.want {
				t.Errorf("TLS handshake timeout %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEndpointURLAppliesToEveryClient(t *testing.T) {
	isolate(t, "")
	// Per-service variables would normally beat cfg.BaseEndpoint; the
	// flag must still win.
	t.Setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:1/ssm-env")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1/s3-env")
	const flag = "http://127.0.0.1:4566"
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: flag})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != flag {
		t.Fatalf("cfg.BaseEndpoint = %v, want %q", cfg.BaseEndpoint, flag)
	}
	got := map[string]*string{
		"ssm":            NewSSM(cfg).Options().BaseEndpoint,
		"ec2":            NewEC2(cfg).Options().BaseEndpoint,
		"iam":            NewIAM(cfg).Options().BaseEndpoint,
		"sts":            NewSTS(cfg).Options().BaseEndpoint,
		"kms":            NewKMS(cfg).Options().BaseEndpoint,
		"s3":             NewS3(cfg).Options().BaseEndpoint,
		"cloudwatchlogs": NewCloudWatchLogs(cfg).Options().BaseEndpoint,
	}
	for name, ep := range got {
		if ep == nil || *ep != flag {
			t.Errorf("%s BaseEndpoint = %v, want %q", name, ep, flag)
		}
	}
	if !NewS3(cfg).Options().UsePathStyle {
		t.Error("s3 with a custom endpoint must use path-style addressing")
	}
}

func TestS3KeepsVirtualHostingWithoutCustomEndpoint(t *testing.T) {
	isolate(t, "")
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if NewS3(cfg).Options().UsePathStyle {
		t.Error("s3 against AWS must keep virtual-hosted addressing")
	}
}

// TestEndpointPrecedence sends a real request and checks which local
// server receives it: the SDK's own endpoint variables must keep working,
// and --endpoint-url must beat them.
func TestEndpointPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		config func(ssmURL string) string
		env    func(ssmURL, globalURL string) map[string]string
		flag   bool
		want   string // "ssm", "global" or "flag"
	}{
		{
			name: "AWS_ENDPOINT_URL_SSM",
			env:  func(s, _ string) map[string]string { return map[string]string{"AWS_ENDPOINT_URL_SSM": s} },
			want: "ssm",
		},
		{
			name: "AWS_ENDPOINT_URL",
			env:  func(_, g string) map[string]string { return map[string]string{"AWS_ENDPOINT_URL": g} },
			want: "global",
		},
		{
			name: "service variable beats AWS_ENDPOINT_URL",
			env: func(s, g string) map[string]string {
				return map[string]string{"AWS_ENDPOINT_URL": g, "AWS_ENDPOINT_URL_SSM": s}
			},
			want: "ssm",
		},
		{
			name: "profile services section",
			config: func(s string) string {
				return "[default]\nservices = local\n[services local]\nssm =\n  endpoint_url = " + s + "\n"
			},
			want: "ssm",
		},
		{
			name: "flag beats AWS_ENDPOINT_URL_SSM",
			env: func(s, g string) map[string]string {
				return map[string]string{"AWS_ENDPOINT_URL": g, "AWS_ENDPOINT_URL_SSM": s}
			},
			flag: true,
			want: "flag",
		},
		{
			name: "flag beats AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
			env: func(s, _ string) map[string]string {
				return map[string]string{"AWS_ENDPOINT_URL_SSM": s, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
			},
			flag: true,
			want: "flag",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := map[string]*recorder{"ssm": {}, "global": {}, "flag": {}}
			urls := map[string]string{}
			for name, r := range recs {
				urls[name] = r.serve(t).URL
			}
			config := ""
			if tt.config != nil {
				config = tt.config(urls["ssm"])
			}
			isolate(t, config)
			staticCreds(t)
			if tt.env != nil {
				for k, v := range tt.env(urls["ssm"], urls["global"]) {
					t.Setenv(k, v)
				}
			}
			opts := Options{Region: "us-east-1"}
			if tt.flag {
				opts.EndpointURL = urls["flag"]
			}
			cfg, err := LoadConfig(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewSSM(cfg).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
				t.Fatalf("DescribeInstanceInformation: %v", err)
			}
			for name, r := range recs {
				want := 0
				if name == tt.want {
					want = 1
				}
				if got := r.count(); got != want {
					t.Errorf("server %q got %d requests, want %d", name, got, want)
				}
			}
			if got := recs[tt.want].targets; len(got) == 1 && got[0] != "AmazonSSM.DescribeInstanceInformation" {
				t.Errorf("X-Amz-Target = %q", got[0])
			}
		})
	}
}

func TestLoadConfigDoesNotDial(t *testing.T) {
	isolate(t, "")
	staticCreds(t)
	rec := &recorder{}
	srv := rec.serve(t)
	observed := 0
	cfg, err := LoadConfig(context.Background(), Options{
		Region:        "us-east-1",
		EndpointURL:   srv.URL,
		OnCredentials: func(aws.Credentials) { observed++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = NewSSM(cfg)
	if rec.count() != 0 || observed != 0 {
		t.Fatalf("LoadConfig and NewSSM must not dial or resolve credentials: requests=%d credentials=%d", rec.count(), observed)
	}
	if _, err := NewSSM(cfg).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatal(err)
	}
	if observed == 0 {
		t.Error("OnCredentials was not called when the credentials were used")
	}
}

func TestDebugLoggingOmitsSecrets(t *testing.T) {
	isolate(t, "")
	staticCreds(t)
	rec := &recorder{}
	srv := rec.serve(t)
	var buf bytes.Buffer
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: srv.URL, Debug: true, DebugOut: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSSM(cfg).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{"debug: SSM.DescribeInstanceInformation", "host=" + host, "status=200", "attempts=1", "request-id=req-123"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug output %q does not contain %q", out, want)
		}
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("want exactly one debug line per call, got %d:\n%s", n, out)
	}
	auth := rec.headers[0].Get("Authorization")
	sig := auth[strings.LastIndex(auth, "=")+1:]
	for _, secret := range []string{"fake-secret-key-for-tests-only", "fake-session-token-for-tests-only", "Authorization", sig, "InstanceInformationList"} {
		if strings.Contains(out, secret) {
			t.Errorf("debug output leaks %q:\n%s", secret, out)
		}
	}
}

func TestDebugLoggingShowsEachAttempt(t *testing.T) {
	isolate(t, "")
	staticCreds(t)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"__type":"ServiceUnavailable","message":"try again"}`))
			return
		}
		_, _ = w.Write([]byte(`{"InstanceInformationList":[]}`))
	}))
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: srv.URL, Debug: true, DebugOut: &buf})
	if err != nil {
		t.Fatal(err)
	}
	noBackoff := func(o *ssm.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
	if _, err := NewSSM(cfg, noBackoff).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "status=200 attempts=2 (503,200)") || strings.Count(out, "\n") != 1 {
		t.Errorf("debug output = %q", out)
	}
}
