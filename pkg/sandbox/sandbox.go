// Package sandbox is ssmkit's local stand-in for AWS Session Manager: one
// loopback endpoint that serves the SSM session APIs moto lacks (ssmapi),
// the ssmmessages service (mgs) and proxies every other AWS API to a moto
// server, plus emulated SSM agents on EC2 instances that exist in moto.
// Real clients (the AWS CLI, aws-sdk-go-v2, ssmkit) and real agents talk to
// it unchanged.
package sandbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/internal/moto"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/mgs"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
	"github.com/ssmkit/ssmkit/pkg/sandbox/ssmapi"
	"github.com/ssmkit/ssmkit/pkg/sandbox/transcript"
)

// DefaultRegion is the sandbox's region unless Options.Region says otherwise.
const DefaultRegion = "us-east-1"

// motoAccessKey is what the sandbox's own set-up calls present to moto,
// which checks no signatures; clients never see it.
const motoAccessKey = "ssmkit-sandbox-internal"

// InstanceSpec describes one sandbox instance and its agent.
type InstanceSpec struct {
	Name string
	// AgentVersion of the emulated agent (default agent.DefaultAgentVersion).
	AgentVersion string
	// Offline: the instance registered once, but its agent is not running
	// (PingStatus ConnectionLost).
	Offline bool
	// NoRole: no instance profile, so the agent could never register.
	NoRole bool
	// Isolated: in a subnet with neither a NAT route nor endpoints, so the
	// agent could never reach the service.
	Isolated bool
	// Hybrid makes an on-premises node instead of an EC2 instance: an
	// activation, an mi- node registered with it (ComputerName, address,
	// platform, the activation's role), and its agent.
	Hybrid bool
	Tags   map[string]string
}

// Options configure a Sandbox.
type Options struct {
	// Instances to create at start.
	Instances []InstanceSpec
	// MotoURL uses a running moto server instead of starting one.
	MotoURL string
	// Addr to listen on (default 127.0.0.1:0). Only loopback is allowed.
	Addr string
	// TLS serves https/wss with a certificate from a CA generated in
	// StateDir (needed by the real SSM Agent).
	TLS bool
	// StateDir is where the sandbox writes (CA, moto log). Default: a new
	// temporary directory removed by Close.
	StateDir string
	Region   string
	// Logf receives one line per notable event (never secrets).
	Logf func(format string, args ...any)
	// Shell for the emulated agents (default /bin/sh).
	Shell string
	// PreferenceMinute scales the preferences' idle timeout and maximum
	// duration (tests; zero means a real minute).
	PreferenceMinute time.Duration
	// AutoAttach starts an emulated agent on any EC2 instance launched
	// through the sandbox's API once the instance could register with
	// AWS (see attach.go).
	AutoAttach bool
	// AutoAttachInterval is how often AutoAttach polls moto
	// (DefaultAutoAttachInterval when zero).
	AutoAttachInterval time.Duration
	// MaxMessageSize, when positive, makes the data channels refuse
	// larger websocket messages with status 1009, as a service with a
	// message size limit would (see mgs.Options).
	MaxMessageSize int64
	// LegacyNonInteractiveDocument serves AWS-StartNonInteractiveCommand
	// without the separate-output parameters, as AWS may (see
	// ssmapi.Options); SetLegacyNonInteractiveDocument flips it at run time.
	LegacyNonInteractiveDocument bool
	// MaxRequestBody bounds every request body the endpoint accepts,
	// including those it passes on to moto (sigv4.DefaultMaxBody when
	// zero); larger ones get a 413 in AWS's shape.
	MaxRequestBody int64
	// AgentVersion is the version of agents that get none of their own:
	// instances without InstanceSpec.AgentVersion and auto-attached
	// instances without an AgentVersionTag (agent.DefaultAgentVersion when
	// empty).
	AgentVersion string
	// AgentRealism makes the emulated agents wait 1 s before a shell's
	// first output, as the real agent does (off: output flows at once).
	AgentRealism bool
	// Proxy starts the intercepting HTTPS proxy (see proxy.go) on a second
	// loopback port: clients with HTTPS_PROXY set to ProxyURL reach AWS's
	// real host names (kms.<region>.amazonaws.com…) and are served by the
	// sandbox, trusting its CA (created even without TLS).
	Proxy bool
	// ProxyAddr is the proxy's listen address (default 127.0.0.1:0).
	ProxyAddr string
	// Credential is the root credential clients must sign with. Zero means
	// fresh random credentials for this run (sigv4.NewRootCredential).
	Credential sigv4.Credential
}

// Instance is a sandbox instance.
type Instance struct {
	fleet.Instance
	AgentVersion string
	Offline      bool
	// Hybrid: an mi- node registered with ActivationID.
	Hybrid       bool
	ActivationID string
	agent        *agent.Agent
}

// Sandbox is a running sandbox.
type Sandbox struct {
	opts     Options
	url      string
	motoURL  string
	moto     *moto.Server
	srv      *http.Server
	ln       net.Listener
	gateway  *mgs.Service
	registry *ssmapi.MemoryInstances
	api      *ssmapi.Handler
	cred     sigv4.Credential
	creds    *sigv4.Store
	tlsCfg   *tls.Config // clients' view: trusts the CA
	caFile   string
	ca       *authority // with TLS or the proxy
	proxy    *proxy
	ownState bool
	awsCfg   aws.Config
	network  fleet.Network
	profile  string
	attacher *attacher

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	instances []*Instance
	closeOnce sync.Once
}

// Start brings the sandbox up: moto, the endpoint, the network and the
// instances with their agents.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := loopbackOnly(opts.Addr); err != nil {
		return nil, err
	}
	s := &Sandbox{opts: opts}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "ssmkit-sandbox-")
		if err != nil {
			return nil, fmt.Errorf("creating a state directory: %w", err)
		}
		s.opts.StateDir, s.ownState = dir, true
	} else if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", opts.StateDir, err)
	}

	// moto.
	s.motoURL = opts.MotoURL
	if s.motoURL == "" {
		logf, err := os.Create(filepath.Join(s.opts.StateDir, "moto.log"))
		if err != nil {
			return nil, fmt.Errorf("creating the moto log: %w", err)
		}
		s.moto, err = moto.Start(ctx, moto.Options{LogWriter: logf})
		if err != nil {
			logf.Close()
			return nil, fmt.Errorf("starting moto (install it with 'pip install moto[server]', or pass --moto-url): %w", err)
		}
		s.motoURL = s.moto.URL()
	} else if err := moto.Ping(ctx, s.motoURL); err != nil {
		return nil, fmt.Errorf("moto at %s does not answer: %w", s.motoURL, err)
	}

	// The endpoint.
	s.ln, err = net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	scheme := "http"
	var serverTLS *tls.Config
	if opts.TLS {
		scheme = "https"
		if s.ca, err = loadAuthority(s.opts.StateDir); err != nil {
			return nil, err
		}
		if serverTLS, err = s.ca.serverConfig(); err != nil {
			return nil, err
		}
		s.tlsCfg, s.caFile = s.ca.clientConfig(), s.ca.file
	}
	s.url = fmt.Sprintf("%s://%s", scheme, s.ln.Addr().String())
	s.gateway, err = mgs.New(mgs.Options{BaseURL: s.url, Logf: opts.Logf, MaxMessageSize: opts.MaxMessageSize})
	if err != nil {
		return nil, err
	}
	s.cred = opts.Credential
	if s.cred.AccessKeyID == "" {
		s.cred = sigv4.NewRootCredential("")
	}
	s.creds = sigv4.NewStore(s.cred)
	s.registry = ssmapi.NewMemoryInstances()
	api, err := ssmapi.New(ssmapi.Options{MotoURL: s.motoURL, Gateway: s.gateway, Instances: s.registry, Region: opts.Region, Logf: opts.Logf,
		PreferenceMinute: opts.PreferenceMinute, LegacyNonInteractiveDocument: opts.LegacyNonInteractiveDocument, Credentials: s.creds,
		OnDeregister: s.deregistered})
	if err != nil {
		return nil, err
	}
	s.api = api
	mux := http.NewServeMux()
	mux.Handle("/v1/control-channel/", s.gateway)
	mux.Handle("/v1/data-channel/", s.gateway)
	mux.Handle("/", api)
	verifier := &sigv4.Verifier{Store: s.creds}
	handler := verifier.Middleware(mux, opts.MaxRequestBody)
	s.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 15 * time.Second, TLSConfig: serverTLS,
		ErrorLog: nil}
	if opts.Proxy {
		addr := opts.ProxyAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		if err := loopbackOnly(addr); err != nil {
			return nil, fmt.Errorf("proxy %w", err)
		}
		if s.ca == nil {
			if s.ca, err = loadAuthority(s.opts.StateDir); err != nil {
				return nil, err
			}
			s.caFile = s.ca.file
		}
		if s.proxy, err = startProxy(addr, s.ca, handler, opts.Logf); err != nil {
			return nil, err
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if serverTLS != nil {
			err = s.srv.ServeTLS(s.ln, "", "")
		} else {
			err = s.srv.Serve(s.ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logf("endpoint stopped: %v", err)
		}
	}()

	// AWS clients for the sandbox's own set-up, through moto directly. awsapi.HTTPClient: moto
	// answers within milliseconds, and without it a loaded machine made the SDK send creates twice
	// ("already exists" at sandbox start).
	s.awsCfg = aws.Config{Region: opts.Region, BaseEndpoint: aws.String(s.motoURL), HTTPClient: awsapi.HTTPClient(nil),
		Credentials: credentials.NewStaticCredentialsProvider(motoAccessKey, motoAccessKey, "")}
	if err := ssmapi.EnsureSessionDocuments(ctx, ssm.NewFromConfig(s.awsCfg), opts.LegacyNonInteractiveDocument); err != nil {
		return nil, fmt.Errorf("creating the AWS session documents: %w", err)
	}
	ec2c := ec2.NewFromConfig(s.awsCfg)
	if s.network, err = fleet.EnsureNetwork(ctx, ec2c, opts.Region); err != nil {
		return nil, err
	}
	if s.profile, err = fleet.EnsureInstanceProfile(ctx, iam.NewFromConfig(s.awsCfg)); err != nil {
		return nil, err
	}
	for _, spec := range opts.Instances {
		if _, err := s.AddInstance(ctx, spec); err != nil {
			return nil, err
		}
	}
	s.startAttacher()
	return s, nil
}

// loopbackOnly checks that addr is a loopback listen address.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %q: the sandbox binds to loopback only", addr)
	}
	return nil
}

// AddInstance launches an instance in moto and, when it can be managed,
// starts its agent.
func (s *Sandbox) AddInstance(ctx context.Context, spec InstanceSpec) (*Instance, error) {
	if spec.Hybrid {
		return s.addHybrid(ctx, spec)
	}
	insts, err := fleet.Launch(ctx, ec2.NewFromConfig(s.awsCfg), s.network, s.profile,
		[]fleet.Spec{{Name: spec.Name, NoRole: spec.NoRole, Isolated: spec.Isolated, Tags: spec.Tags}})
	if err != nil {
		return nil, err
	}
	inst := &Instance{Instance: insts[0], AgentVersion: spec.AgentVersion, Offline: spec.Offline}
	if inst.AgentVersion == "" {
		inst.AgentVersion = s.defaultAgentVersion()
	}
	s.mu.Lock()
	s.instances = append(s.instances, inst)
	s.mu.Unlock()
	if spec.NoRole || spec.Isolated {
		// Such an agent can never register: nothing to run.
		return inst, nil
	}
	now := time.Now()
	info := instanceInfo(inst, fleet.RoleName, spec.Tags)
	if spec.Offline {
		info.LastPing = now.Add(-26 * time.Hour)
	}
	if err := s.registry.UpdateInstance(ctx, info); err != nil {
		return nil, err
	}
	if spec.Offline {
		return inst, nil
	}
	s.startAgent(inst)
	return inst, nil
}

// defaultAgentVersion is Options.AgentVersion, else the current agent's.
func (s *Sandbox) defaultAgentVersion() string {
	if s.opts.AgentVersion != "" {
		return s.opts.AgentVersion
	}
	return agent.DefaultAgentVersion
}

// instanceInfo is what the registry records when inst's agent registers.
func instanceInfo(inst *Instance, role string, tags map[string]string) ssmapi.InstanceInfo {
	now := time.Now()
	return ssmapi.InstanceInfo{
		InstanceID: inst.ID, Name: inst.Name, ComputerName: "ip-" + strings.ReplaceAll(inst.PrivateIP, ".", "-") + ".ec2.internal",
		IPAddress: inst.PrivateIP, AgentVersion: inst.AgentVersion, AgentName: "amazon-ssm-agent",
		PlatformType: "Linux", PlatformName: "Amazon Linux", PlatformVersion: "2023", ResourceType: "EC2Instance",
		IAMRole: role, AssociationStatus: "Success", RegistrationDate: now, LastPing: now, Tags: tags,
	}
}

// startAgent runs inst's emulated agent until the sandbox closes or the
// agent is closed.
func (s *Sandbox) startAgent(inst *Instance) {
	a := agent.New(agent.Config{
		InstanceID:       inst.ID,
		Region:           s.opts.Region,
		AgentVersion:     inst.AgentVersion,
		Endpoint:         s.url,
		TLSConfig:        s.tlsCfg,
		Credentials:      s.Credentials(),
		FirstOutputDelay: s.firstOutputDelay(),
		KeyService:       encryption.NewKMSKeyService(kms.NewFromConfig(s.awsCfg)),
		Shell:            s.opts.Shell,
		Transcripts:      &transcripts{sink: &transcript.Sink{S3: s3.NewFromConfig(s.awsCfg, func(o *s3.Options) { o.UsePathStyle = true }), Logs: cloudwatchlogs.NewFromConfig(s.awsCfg)}},
		Logf:             s.opts.Logf,
	})
	inst.agent = a
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := a.Run(s.ctx); err != nil && s.ctx.Err() == nil {
			s.opts.Logf("agent %s stopped: %v", inst.ID, err)
		}
	}()
}

// SetLegacyNonInteractiveDocument switches the AWS-StartNonInteractiveCommand
// that StartSession uses from now on: legacy, without the separateOutputStream,
// stdoutSeparatorPrefix and stderrSeparatorPrefix parameters (StartSession
// with them fails with InvalidParameters), or today's. The copy moto holds
// for GetDocument keeps the version chosen at start.
func (s *Sandbox) SetLegacyNonInteractiveDocument(legacy bool) {
	s.api.SetLegacyNonInteractiveDocument(legacy)
}

// deregistered stops the agent of a node DeregisterManagedInstance removed:
// on AWS its credentials stop working.
func (s *Sandbox) deregistered(id string) {
	for _, i := range s.Instances() {
		if i.ID == id && i.agent != nil {
			a := i.agent
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_ = a.Close()
			}()
		}
	}
}

// firstOutputDelay is the real agent's initial pty read delay with
// Options.AgentRealism, none otherwise.
func (s *Sandbox) firstOutputDelay() time.Duration {
	if s.opts.AgentRealism {
		return time.Second
	}
	return 0
}

// Sessions lists the sessions the instance's agent is serving.
func (i *Instance) Sessions() []string {
	if i.agent == nil {
		return nil
	}
	return i.agent.Sessions()
}

// Online reports whether the instance's agent has its control channel up.
func (i *Instance) Online() bool { return i.agent != nil && i.agent.Connected() }

// WaitReady waits until every agent that should be online has its control
// channel up.
func (s *Sandbox) WaitReady(ctx context.Context) error {
	for {
		pending := ""
		for _, i := range s.Instances() {
			if i.agent != nil && !i.agent.Connected() {
				pending = i.ID
				break
			}
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the agent of %s: %w", pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Instances returns the sandbox's instances.
func (s *Sandbox) Instances() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Instance(nil), s.instances...)
}

// URL is the endpoint for every AWS service (AWS_ENDPOINT_URL).
func (s *Sandbox) URL() string { return s.url }

// MotoURL is the moto server behind the sandbox.
func (s *Sandbox) MotoURL() string { return s.motoURL }

// Region is the sandbox's region.
func (s *Sandbox) Region() string { return s.opts.Region }

// ProxyURL is the intercepting proxy's URL for HTTPS_PROXY ("" without
// Options.Proxy).
func (s *Sandbox) ProxyURL() string {
	if s.proxy == nil {
		return ""
	}
	return s.proxy.URL()
}

// ProxyRequests is how many requests for host (e.g.
// kms.us-east-1.amazonaws.com) clients sent through the proxy.
func (s *Sandbox) ProxyRequests(host string) int {
	if s.proxy == nil {
		return 0
	}
	return s.proxy.requestsTo(host)
}

// CAFile is the CA certificate clients must trust with TLS or the proxy on ("" otherwise).
func (s *Sandbox) CAFile() string { return s.caFile }

// ClientTLS is the TLS configuration that trusts the sandbox (nil without TLS).
func (s *Sandbox) ClientTLS() *tls.Config { return s.tlsCfg }

// credentials are the root credentials for signing.
func (s *Sandbox) credentials() aws.Credentials {
	return aws.Credentials{AccessKeyID: s.cred.AccessKeyID, SecretAccessKey: s.cred.SecretAccessKey}
}

// Credentials are this run's root credentials: every request to the
// endpoint must be SigV4-signed with them (or with credentials minted
// through the sandbox).
func (s *Sandbox) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.cred.AccessKeyID, s.cred.SecretAccessKey, "")
}

// AccountID is the account of the root credentials (moto's default).
func (s *Sandbox) AccountID() string { return s.cred.AccountID }

// AWSConfig is an aws.Config for clients of the sandbox endpoint, signed
// with this run's credentials.
func (s *Sandbox) AWSConfig() aws.Config {
	cfg := aws.Config{Region: s.opts.Region, BaseEndpoint: aws.String(s.url), Credentials: s.Credentials()}
	if s.tlsCfg != nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: s.tlsCfg}}
	}
	cfg.HTTPClient = awsapi.HTTPClient(cfg.HTTPClient) // see Start's awsCfg
	return cfg
}

// Env is the environment a client needs (eval "$(ssmkit sandbox env)").
func (s *Sandbox) Env() []string {
	env := []string{
		"AWS_ENDPOINT_URL=" + s.url,
		"AWS_REGION=" + s.opts.Region,
		"AWS_DEFAULT_REGION=" + s.opts.Region,
		"AWS_ACCESS_KEY_ID=" + s.cred.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.cred.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if s.caFile != "" {
		env = append(env, "AWS_CA_BUNDLE="+s.caFile, "SSL_CERT_FILE="+s.caFile)
	}
	if s.proxy != nil {
		// Loopback stays direct: the endpoint itself, StreamUrls, moto.
		const direct = "127.0.0.1,localhost,::1"
		env = append(env, "HTTPS_PROXY="+s.proxy.URL(), "https_proxy="+s.proxy.URL(), "NO_PROXY="+direct, "no_proxy="+direct)
	}
	return env
}

// Close stops the agents, the endpoint and moto (if the sandbox started
// it), and removes a temporary state directory.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		for _, i := range s.Instances() {
			if i.agent != nil {
				_ = i.agent.Close()
			}
		}
		if s.attacher != nil {
			s.attacher.close()
		}
		if s.gateway != nil {
			_ = s.gateway.Close()
		}
		if s.proxy != nil {
			s.proxy.close()
		}
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.srv.Shutdown(ctx)
			cancel()
			_ = s.srv.Close()
		} else if s.ln != nil {
			_ = s.ln.Close()
		}
		s.wg.Wait()
		if s.moto != nil {
			_ = s.moto.Close()
		}
		if s.ownState {
			_ = os.RemoveAll(s.opts.StateDir)
		}
	})
	return nil
}

// transcripts adapts the transcript sink to the agent's interface.
type transcripts struct{ sink *transcript.Sink }

func (t *transcripts) Open(ctx context.Context, m agent.SessionMeta) (io.WriteCloser, error) {
	in := m.Inputs
	return t.sink.Open(ctx, transcript.Target{
		SessionID: m.SessionID, InstanceID: m.InstanceID,
		Bucket: in.S3BucketName, Prefix: in.S3KeyPrefix, S3Encryption: bool(in.S3EncryptionEnabled),
		LogGroup: in.CloudWatchLogGroupName, Streaming: bool(in.CloudWatchStreamingEnabled),
	})
}
