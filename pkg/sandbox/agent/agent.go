// Package agent is an emulated SSM Agent for the ssmkit sandbox.
//
// An Agent talks to an ssmmessages service exactly as the real agent talks
// to AWS (SESSION-PROTOCOL.md §9): it opens a control channel for its
// instance, waits for interactive_shell messages, and serves each session on
// its own data channel with a real shell in a pty, a command, or a TCP port
// forwarder. It reports the end of every session with agent_task_complete.
//
// Deviations from the real agent, all deliberate (the sandbox README has
// the full table):
//   - no 1 s delay before the first shell output (Config.FirstOutputDelay
//     adds it) and no 1 KiB-per-message pacing with 1 ms sleeps between
//     reads: output flows as fast as the data channel takes it;
//   - output bytes are passed exactly: an incomplete UTF-8 sequence at the
//     end of a read is held for the next one, and invalid bytes at the end
//     of the output are sent, where the real agent drops up to 3 of them;
//   - it never creates users: without runAsEnabled the shell runs as the
//     agent's own user (the real agent creates and uses ssm-user), and a
//     RunAs user that does not exist fails the session with a message to
//     the client. With runAsEnabled, the task's RunAsUser or else the
//     document's runAsDefaultUser is used for all three shell-like session
//     types ("root" is refused; switching needs the agent to run as root);
//     runAsElevated is ignored;
//   - NonInteractiveCommands run through "sh -c" rather than being split
//     shell-style and executed directly;
//   - the VPC-derived part of the port-forwarding deny list (the VPC's first
//     four addresses and its broadcast address) is not applied: a sandbox
//     has no VPC. The fixed instance-metadata addresses are refused;
//   - the control channel reconnects after a short back-off (Config) rather
//     than the real agent's 5–10 s growing to 40 min.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

// Defaults applied to zero-valued Config fields.
const (
	// DefaultAgentVersion is the version the agent reports: recent enough
	// that clients pick smux with keepalive off (§8.7).
	DefaultAgentVersion = datachannel.DefaultAgentVersion
	// DefaultPlatformType is what OpenControlChannel reports.
	DefaultPlatformType = "linux"
	// DefaultShell is the shell of Standard_Stream sessions.
	DefaultShell = "/bin/sh"
	// DefaultReconnectDelay is the first control-channel reconnect delay.
	DefaultReconnectDelay = time.Second
	// DefaultMaxReconnectDelay caps the control-channel reconnect delay.
	DefaultMaxReconnectDelay = 5 * time.Second
	// DefaultTaskAckTimeout is how long the agent waits for
	// agent_task_acknowledge before it resends agent_task_complete (§9.4).
	DefaultTaskAckTimeout = time.Second
	// DefaultTaskCompleteAttempts is how many times agent_task_complete is
	// sent in all when no acknowledgement comes (§9.4).
	DefaultTaskCompleteAttempts = 3
	// DefaultRequestTimeout bounds each Create*Channel REST call (§10.1).
	DefaultRequestTimeout = 15 * time.Second
	// DefaultDialTimeout bounds each websocket upgrade. The real agent sets
	// none; a bound keeps a wedged service from hanging a session forever.
	DefaultDialTimeout = 30 * time.Second
)

// DefaultDeniedRemoteIPs returns the addresses a Port session may never
// forward to (§8.1): the instance metadata, DNS, time and other link-local
// services of EC2.
func DefaultDeniedRemoteIPs() []string {
	return []string{
		"169.254.169.254", "fd00:ec2::254",
		"169.254.169.253", "fd00:ec2::253",
		"169.254.169.123", "fd00:ec2::123",
		"169.254.169.250", "169.254.169.251",
		"fd00:ec2::240",
	}
}

// ErrInvalidConfig is wrapped by the errors Run returns for a bad Config.
var ErrInvalidConfig = errors.New("invalid agent config")

// Config configures an Agent. Zero values take the defaults named on each
// field.
type Config struct {
	// InstanceID is the managed instance id ("i-…" or "mi-…"); required.
	InstanceID string
	// Region is the SigV4 signing region of the ssmmessages calls
	// ("us-east-1" when empty).
	Region string
	// Credentials sign the Create*Channel calls and the websocket upgrades
	// with SigV4 (service ssmmessages), as the real agent does; the
	// sandbox refuses unsigned Create*Channel calls. Nil sends them
	// unsigned.
	Credentials aws.CredentialsProvider
	// AgentVersion is reported to the service and to clients; it must be a
	// 4-part numeric version (DefaultAgentVersion). An old one such as
	// 3.0.161.0 makes clients use basic port forwarding.
	AgentVersion string
	// PlatformType is "linux" (default), "windows" or "macos".
	PlatformType string
	// Endpoint is the base URL of the ssmmessages service,
	// http(s)://host:port. The websockets use ws(s) accordingly; plain http
	// is only accepted for loopback hosts.
	Endpoint string
	// TLSConfig is used for https and wss (for example RootCAs holding the
	// sandbox CA). Nil means the system defaults.
	TLSConfig *tls.Config
	// HTTPClient makes the Create*Channel REST calls. Nil means a client
	// with DefaultRequestTimeout that uses TLSConfig.
	HTTPClient *http.Client
	// KeyService performs the KMS calls of encrypted sessions (§6.2).
	// Without it, a session whose document names a KMS key fails.
	KeyService encryption.KeyService
	// RequireKMSChallenge refuses KMS clients that do not acknowledge the
	// random challenge (the agent's Kms.RequireKMSChallengeResponse).
	RequireKMSChallenge bool

	// Shell is the Standard_Stream shell (DefaultShell).
	Shell string
	// WorkDir is the shells' and commands' working directory; empty means
	// the agent's own. Sessions that run as another user start in that
	// user's home directory (or / when it does not exist).
	WorkDir string
	// Env is the base environment of shells and commands; nil means the
	// agent's own. TERM, LANG (if unset) and HOME are added (§7.2).
	Env []string
	// FirstOutputDelay holds a shell's first output back this long, as the
	// real agent's 1 s initial pty read delay (opt-in realism; zero means
	// output flows at once).
	FirstOutputDelay time.Duration
	// IgnoreRunAs runs every session as the agent's own user, whatever the
	// document's runAsEnabled/runAsDefaultUser and the task's RunAsUser say.
	IgnoreRunAs bool

	// Transcripts, when set, receives the output of Standard_Stream,
	// InteractiveCommands and NonInteractiveCommands sessions whose
	// document names an S3 bucket or a CloudWatch log group.
	Transcripts TranscriptSink

	// DeniedRemoteIPs are the addresses Port sessions refuse to forward to
	// when the document names a host; nil means DefaultDeniedRemoteIPs().
	DeniedRemoteIPs []string

	// Offline makes Run never connect (a broken agent for the doctor).
	Offline bool

	// ReconnectDelay is the first control-channel reconnect delay
	// (DefaultReconnectDelay); it doubles, with jitter, up to
	// MaxReconnectDelay (DefaultMaxReconnectDelay).
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// TaskAckTimeout and TaskCompleteAttempts govern agent_task_complete
	// resends (DefaultTaskAckTimeout, DefaultTaskCompleteAttempts).
	TaskAckTimeout       time.Duration
	TaskCompleteAttempts int
	// DialTimeout bounds each websocket upgrade (DefaultDialTimeout).
	DialTimeout time.Duration

	// Logf, when set, receives debug lines. It never sees tokens, keys or
	// session data.
	Logf func(format string, args ...any)
}

// withDefaults fills in defaults and validates c.
func (c Config) withDefaults() (Config, error) {
	if c.InstanceID == "" {
		return c, fmt.Errorf("%w: InstanceID is required", ErrInvalidConfig)
	}
	if strings.ContainsAny(c.InstanceID, "/?#% \t\r\n") {
		return c, fmt.Errorf("%w: InstanceID %q contains characters not allowed in a URL path", ErrInvalidConfig, c.InstanceID)
	}
	if c.AgentVersion == "" {
		c.AgentVersion = DefaultAgentVersion
	}
	if !version.Valid(c.AgentVersion) {
		return c, fmt.Errorf("%w: AgentVersion %q is not a 4-part numeric version", ErrInvalidConfig, c.AgentVersion)
	}
	if c.PlatformType == "" {
		c.PlatformType = DefaultPlatformType
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	switch c.PlatformType {
	case "linux", "windows", "macos":
	default:
		return c, fmt.Errorf("%w: PlatformType %q is not linux, windows or macos", ErrInvalidConfig, c.PlatformType)
	}
	if !c.Offline {
		if _, err := parseEndpoint(c.Endpoint); err != nil {
			return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if c.Shell == "" {
		c.Shell = DefaultShell
	}
	if c.Env == nil {
		c.Env = os.Environ()
	}
	if c.DeniedRemoteIPs == nil {
		c.DeniedRemoteIPs = DefaultDeniedRemoteIPs()
	}
	if c.ReconnectDelay <= 0 {
		c.ReconnectDelay = DefaultReconnectDelay
	}
	if c.MaxReconnectDelay <= 0 {
		c.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	c.MaxReconnectDelay = max(c.MaxReconnectDelay, c.ReconnectDelay)
	if c.TaskAckTimeout <= 0 {
		c.TaskAckTimeout = DefaultTaskAckTimeout
	}
	if c.TaskCompleteAttempts <= 0 {
		c.TaskCompleteAttempts = DefaultTaskCompleteAttempts
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Timeout: DefaultRequestTimeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     c.TLSConfig,
				TLSHandshakeTimeout: 10 * time.Second,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	return c, nil
}

// parseEndpoint checks an ssmmessages base URL.
func parseEndpoint(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("an Endpoint is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q is not a URL", raw)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, fmt.Errorf("endpoint %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("endpoint %q has no host", raw)
	}
	return u, nil
}

// Agent is one emulated SSM Agent. Create it with New, start it with Run
// and stop it with Close (or by cancelling Run's context).
type Agent struct {
	cfg    Config
	cfgErr error

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	mu         sync.Mutex
	running    bool
	runDone    chan struct{}
	control    *transport.Conn // the open control channel, or nil
	sessions   map[string]*session
	ackWaiters map[string]chan struct{} // agent_task_complete MessageId → waiter
	wg         sync.WaitGroup           // session workers
}

// New returns an Agent for cfg. Configuration errors are reported by Run.
func New(cfg Config) *Agent {
	full, err := cfg.withDefaults()
	if err != nil {
		full = cfg
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Agent{
		cfg:        full,
		cfgErr:     err,
		ctx:        ctx,
		cancel:     cancel,
		sessions:   make(map[string]*session),
		ackWaiters: make(map[string]chan struct{}),
	}
}

func (a *Agent) logf(format string, args ...any) {
	if a.cfg.Logf != nil {
		a.cfg.Logf("agent "+a.cfg.InstanceID+": "+format, args...)
	}
}

// Run keeps the control channel open, reconnecting with back-off when it
// drops, and serves sessions until ctx is done or Close is called. Every
// session is then cancelled and its processes are killed and reaped before
// Run returns nil. Run returns an error only for an invalid Config or when
// called twice.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfgErr != nil {
		return a.cfgErr
	}
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("agent is already running")
	}
	if a.ctx.Err() != nil {
		a.mu.Unlock()
		return nil // closed before it ran
	}
	a.running = true
	a.runDone = make(chan struct{})
	done := a.runDone
	a.mu.Unlock()
	defer close(done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.ctx, cancel)
	defer stop()
	defer a.wg.Wait()
	// Sessions run under ctx: when Run's context ends, they are cancelled
	// (and the deferred wg.Wait reaps them) before Run returns.
	defer cancel()

	if a.cfg.Offline {
		a.logf("offline: not connecting")
		<-ctx.Done()
		return nil
	}
	delay := a.cfg.ReconnectDelay
	for {
		opened, err := a.controlChannel(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if opened {
			delay = a.cfg.ReconnectDelay
		}
		a.logf("control channel: %v; reconnecting", err)
		wait := jitter(delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, a.cfg.MaxReconnectDelay)
	}
}

// Close stops the agent: Run returns once every session has been cancelled
// and cleaned up. Close waits for that and is safe to call more than once,
// and before or without Run.
func (a *Agent) Close() error {
	a.cancel()
	a.mu.Lock()
	done := a.runDone
	a.mu.Unlock()
	if done != nil {
		<-done
	}
	a.wg.Wait()
	if a.cfgErr != nil {
		return nil
	}
	if t, ok := a.cfg.HTTPClient.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// Connected reports whether the control channel is open.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.control != nil
}

// Sessions returns the ids of the sessions the agent is serving, sorted.
func (a *Agent) Sessions() []string {
	a.mu.Lock()
	ids := make([]string, 0, len(a.sessions))
	for id := range a.sessions {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	sort.Strings(ids)
	return ids
}

// InstanceID returns the instance id the agent serves.
func (a *Agent) InstanceID() string { return a.cfg.InstanceID }

// Version returns the version the agent reports.
func (a *Agent) Version() string { return a.cfg.AgentVersion }
