// Package awsapi loads the AWS configuration ssmkit runs with and builds the
// service clients that commands use. It is the only package that knows how
// global flags map onto aws-sdk-go-v2, and the one place that turns AWS
// errors into one-line hints (see Hint).
//
// Nothing here dials AWS: LoadConfig reads the environment and the shared
// config files only; credentials are resolved on the first API call.
package awsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/defaults"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// appID is sent in the User-Agent so that ssmkit traffic is identifiable in
// CloudTrail.
const appID = "ssmkit"

// ErrNoRegion is returned by LoadConfig when no region is configured
// anywhere. Its message carries the fix.
var ErrNoRegion = errors.New("no AWS region configured: set --region or AWS_REGION, or add region to your profile")

// Options are the global settings that shape the AWS configuration. The
// zero value means "whatever the SDK's standard loader finds".
type Options struct {
	// Profile selects a shared config profile (--profile); empty means
	// AWS_PROFILE or "default".
	Profile string
	// Region overrides every other source of the region (--region).
	Region string
	// EndpointURL, when set, is the base endpoint of every service client
	// built from the returned config (--endpoint-url). It wins over
	// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE> and profile endpoints.
	EndpointURL string
	// Debug logs one line per API call to DebugOut, with the HTTP status of
	// every attempt.
	Debug bool
	// DebugOut receives debug lines; nil discards them.
	DebugOut io.Writer
	// OnCredentials, when set, is called with the credentials every time
	// they are used. The CLI uses it to learn secrets it must redact.
	OnCredentials func(aws.Credentials)
}

// LoadConfig loads the AWS configuration with the SDK's standard loader
// (environment, shared config and credentials files, SSO, per-service
// endpoint variables) and applies opts on top. It returns ErrNoRegion when
// no region is configured.
//
// Unless the user chose a retry mode (AWS_RETRY_MODE or retry_mode in the
// profile), clients use the adaptive retry mode: ssmkit fans out across
// fleets, and adaptive mode backs off client-side when AWS throttles instead
// of burning every attempt.
func LoadConfig(ctx context.Context, opts Options) (aws.Config, error) {
	loadOpts := []func(*config.LoadOptions) error{
		config.WithAppID(appID),
	}
	if opts.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	cfg.HTTPClient = HTTPClient(withModeTimeouts(cfg.HTTPClient, cfg.DefaultsMode))
	if cfg.Retryer == nil && cfg.RetryMode == "" {
		// Clients build retry.NewAdaptiveMode from this, honouring
		// RetryMaxAttempts, with a fresh token bucket per client.
		cfg.RetryMode = aws.RetryModeAdaptive
	}
	if opts.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(opts.EndpointURL)
		// Service clients let AWS_ENDPOINT_URL_<SERVICE> and profile
		// "services" sections override cfg.BaseEndpoint, by asking each
		// config source in order. A source placed first that answers for
		// every service makes the flag win, as it does in the AWS CLI.
		cfg.ConfigSources = append([]any{endpointOverride(opts.EndpointURL)}, cfg.ConfigSources...)
	}
	if opts.Debug {
		// Our own middleware rather than the SDK's ClientLogMode:
		// LogRequest/LogResponse print the Authorization header,
		// X-Amz-Security-Token and bodies (StartSession's stream token),
		// and LogRetries repeats raw error text. See debugLogging.
		out := opts.DebugOut
		if out == nil {
			out = io.Discard
		}
		cfg.APIOptions = append(cfg.APIOptions, debugLogging(out))
	}
	if opts.OnCredentials != nil && cfg.Credentials != nil {
		cfg.Credentials = &observedCredentials{inner: cfg.Credentials, observe: opts.OnCredentials}
	}
	return cfg, nil
}

// endpointOverride answers the SDK's per-service base endpoint lookup with
// the same URL for every service. It implements the SDK's (internal)
// ServiceBaseEndpointProvider interface.
type endpointOverride string

// GetServiceBaseEndpoint returns the override for any service.
func (e endpointOverride) GetServiceBaseEndpoint(context.Context, string) (string, bool, error) {
	return string(e), true, nil
}

// observedCredentials passes every retrieval through to the inner provider
// and reports the result, so that secrets can be redacted from output.
type observedCredentials struct {
	inner   aws.CredentialsProvider
	observe func(aws.Credentials)
}

// Retrieve returns the inner provider's credentials.
func (o *observedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := o.inner.Retrieve(ctx)
	if err == nil {
		o.observe(creds)
	}
	return creds, err
}

// ProviderSources keeps the SDK's credential-source user agent metrics.
func (o *observedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := o.inner.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// withModeTimeouts sets the connect and TLS timeouts of the defaults mode
// (AWS_DEFAULTS_MODE, defaults_mode in the profile) on a buildable client, as
// service clients do — but only to clients of that type, and the client
// LoadConfig hands them is HTTPClient's wrapper. "auto" gets the "standard"
// timeouts (service clients pick in-region or cross-region by asking the
// instance metadata service); "legacy", the default, has none.
func withModeTimeouts(c aws.HTTPClient, mode aws.DefaultsMode) aws.HTTPClient {
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		return c
	}
	if mode == aws.DefaultsModeAuto {
		mode = aws.DefaultsModeStandard
	}
	mc, err := defaults.GetModeConfiguration(mode)
	if err != nil {
		return c
	}
	if d, ok := mc.GetConnectTimeout(); ok {
		b = b.WithDialerOptions(func(dialer *net.Dialer) { dialer.Timeout = d })
	}
	if d, ok := mc.GetTLSNegotiationTimeout(); ok {
		b = b.WithTransportOptions(func(tr *http.Transport) { tr.TLSHandshakeTimeout = d })
	}
	return b
}
