// Package local is `ssmkit doctor --local`: checks run on a managed
// instance itself, without the user's AWS credentials. It asks the instance
// metadata service (IMDSv2) who and where it is, looks for the SSM Agent,
// resolves and dials the Systems Manager endpoints, compares the clock with
// theirs and checks the disk where the agent writes.
//
// Every address, command and path is a field of Prober so that tests point
// them at loopback fakes; every probe has a short timeout.
package local

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

// Defaults for zero Prober fields.
const (
	// DefaultIMDSEndpoint is the instance metadata service.
	DefaultIMDSEndpoint = "http://169.254.169.254"
	// DefaultIMDSTimeout bounds each metadata request.
	DefaultIMDSTimeout = time.Second
	// DefaultTimeout bounds each network probe (DNS, TCP, TLS, Date).
	DefaultTimeout = 3 * time.Second
	// DefaultAgentDir is where the agent keeps its state and logs.
	DefaultAgentDir = "/var/lib/amazon/ssm"
	// MinFreeBytes is the free space below which the disk check fails.
	MinFreeBytes = 100 << 20
	// maxSkew is the clock difference SigV4 rejects.
	maxSkew = 5 * time.Minute
)

// Services are the endpoints the agent talks to.
var Services = []string{"ssm", "ssmmessages", "ec2messages"}

// CheckIDs lists the local checks in report order. The DNS and TLS checks
// exist once per service in Services.
var CheckIDs = []string{
	"local.imds", "local.identity", "local.agent-service", "local.agent-version",
	"local.dns.ssm", "local.dns.ssmmessages", "local.dns.ec2messages",
	"local.tls.ssm", "local.tls.ssmmessages", "local.tls.ec2messages",
	"local.proxy", "local.role-credentials", "local.clock-skew", "local.disk",
}

// Prober runs the local checks. The zero value probes the real instance.
type Prober struct {
	// IMDSEndpoint is the metadata service base URL.
	IMDSEndpoint string
	// IMDSTimeout bounds each metadata request.
	IMDSTimeout time.Duration
	// Region overrides the region from the metadata service.
	Region string
	// Endpoint returns host:port for a service in a region; nil means
	// "<service>.<region>.amazonaws.com:443".
	Endpoint func(service, region string) string
	// Timeout bounds each network probe.
	Timeout time.Duration
	// TLSConfig is cloned for the handshakes (tests add their CA); nil
	// means the system roots.
	TLSConfig *tls.Config
	// Resolver resolves endpoint names; nil means net.DefaultResolver.
	Resolver interface {
		LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	}
	// Getenv reads the environment (proxy settings); nil means os.Getenv.
	Getenv func(string) string
	// AgentStatus reports whether the agent runs and how that was learnt;
	// nil means systemctl, then snap, then a process scan.
	AgentStatus func(ctx context.Context) (running bool, how string, err error)
	// AgentVersion returns the installed agent's version; nil means
	// `amazon-ssm-agent --version`.
	AgentVersion func(ctx context.Context) (string, error)
	// AgentDir is where the agent writes; its free space is checked.
	AgentDir string
	// FreeBytes returns the free bytes under a path; nil means statfs.
	FreeBytes func(path string) (uint64, error)
	// Now is the local clock; nil means time.Now.
	Now func() time.Time
}

func (p *Prober) defaults() {
	if p.IMDSEndpoint == "" {
		p.IMDSEndpoint = DefaultIMDSEndpoint
	}
	if p.IMDSTimeout <= 0 {
		p.IMDSTimeout = DefaultIMDSTimeout
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.Endpoint == nil {
		p.Endpoint = func(service, region string) string {
			return net.JoinHostPort(service+"."+region+".amazonaws.com", "443")
		}
	}
	if p.Resolver == nil {
		p.Resolver = net.DefaultResolver
	}
	if p.Getenv == nil {
		p.Getenv = os.Getenv
	}
	if p.AgentStatus == nil {
		p.AgentStatus = systemAgentStatus
	}
	if p.AgentVersion == nil {
		p.AgentVersion = systemAgentVersion
	}
	if p.AgentDir == "" {
		p.AgentDir = DefaultAgentDir
	}
	if p.FreeBytes == nil {
		p.FreeBytes = freeBytes
	}
	if p.Now == nil {
		p.Now = time.Now
	}
}

// Result is what a local run found.
type Result struct {
	// InstanceID is from the metadata service ("" when unreachable).
	InstanceID string
	// Checks are in CheckIDs order.
	Checks []doctor.Check
}

// imdsFacts is what the metadata service told.
type imdsFacts struct {
	token, instanceID, region, role string
	err                             error
	credsErr                        error
	credsExpire                     string
}

// Run runs every local check.
func (p *Prober) Run(ctx context.Context) Result {
	p.defaults()
	im := p.imds(ctx)
	region := p.Region
	if region == "" {
		region = im.region
	}
	checks := map[string]doctor.Check{}
	var mu sync.Mutex
	set := func(id string, c doctor.Check) {
		mu.Lock()
		defer mu.Unlock()
		c.ID = id
		checks[id] = c
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		running, how, err := p.AgentStatus(ctx)
		switch {
		case err != nil:
			set("local.agent-service", doctor.Check{Status: doctor.Fail, Summary: "the SSM Agent was not found: " + err.Error(),
				Fix: "install the agent: https://docs.aws.amazon.com/systems-manager/latest/userguide/manually-install-ssm-agent-linux.html"})
		case !running:
			set("local.agent-service", doctor.Check{Status: doctor.Fail, Summary: "the SSM Agent is not running", Evidence: []string{how},
				Fix: "sudo systemctl enable --now amazon-ssm-agent (snap: sudo snap start amazon-ssm-agent)"})
		default:
			set("local.agent-service", doctor.Check{Status: doctor.Pass, Summary: "the SSM Agent is running", Evidence: []string{how}})
		}
	})
	wg.Go(func() {
		v, err := p.AgentVersion(ctx)
		switch {
		case err != nil:
			set("local.agent-version", doctor.Check{Status: doctor.Skip, Summary: "cannot read the agent version: " + err.Error()})
		case version.AgentCompare(v, doctor.MinAgentVersion) < 0:
			set("local.agent-version", doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("SSM Agent %s is older than %s", v, doctor.MinAgentVersion),
				Fix: "update the agent: sudo yum update -y amazon-ssm-agent (or snap refresh amazon-ssm-agent)"})
		default:
			set("local.agent-version", doctor.Check{Status: doctor.Pass, Summary: "SSM Agent " + v})
		}
	})
	wg.Go(func() { set("local.disk", p.disk()) })
	set("local.proxy", p.proxy(region))
	if region == "" {
		for _, s := range Services {
			set("local.dns."+s, skipf("the region is unknown (IMDS unreachable; set --region)"))
			set("local.tls."+s, skipf("the region is unknown (IMDS unreachable; set --region)"))
		}
		set("local.clock-skew", skipf("the region is unknown"))
	} else {
		for _, s := range Services {
			wg.Go(func() {
				dnsCheck, tlsCheck := p.endpoint(ctx, s, region)
				set("local.dns."+s, dnsCheck)
				set("local.tls."+s, tlsCheck)
			})
		}
		wg.Go(func() { set("local.clock-skew", p.clock(ctx, region)) })
	}
	wg.Wait()

	// IMDS results.
	if im.err != nil {
		set("local.imds", doctor.Check{Status: doctor.Fail, Summary: "the instance metadata service (IMDSv2) does not answer: " + im.err.Error(),
			Fix: "aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled --http-put-response-hop-limit 2"})
		set("local.identity", skipf("IMDS is unreachable"))
		set("local.role-credentials", skipf("IMDS is unreachable"))
	} else {
		set("local.imds", doctor.Check{Status: doctor.Pass, Summary: "IMDSv2 answers"})
		set("local.identity", doctor.Check{Status: doctor.Pass, Summary: fmt.Sprintf("instance %s in %s", im.instanceID, im.region),
			Evidence: []string{"instance-id=" + im.instanceID, "region=" + im.region}})
		switch {
		case im.role == "":
			set("local.role-credentials", doctor.Check{Status: doctor.Fail, Summary: "the instance has no role credentials (no instance profile)",
				Fix: "aws ec2 associate-iam-instance-profile --instance-id " + im.instanceID + " --iam-instance-profile Name=<profile> (Terraform: terraform/modules/instance-role), or turn on default host management"})
		case im.credsErr != nil:
			set("local.role-credentials", doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("credentials of role %s are not available: %v", im.role, im.credsErr),
				Fix: "check the role's trust policy allows ec2.amazonaws.com: aws iam get-role --role-name " + im.role})
		default:
			set("local.role-credentials", doctor.Check{Status: doctor.Pass, Summary: "role " + im.role + " credentials are available",
				Evidence: []string{"expires " + im.credsExpire}})
		}
	}
	out := Result{InstanceID: im.instanceID}
	for _, id := range CheckIDs {
		out.Checks = append(out.Checks, checks[id])
	}
	return out
}

func skipf(format string, args ...any) doctor.Check {
	return doctor.Check{Status: doctor.Skip, Summary: fmt.Sprintf(format, args...)}
}

// imds talks IMDSv2: a token PUT, then GETs with the token.
func (p *Prober) imds(ctx context.Context) imdsFacts {
	var f imdsFacts
	client := &http.Client{Timeout: p.IMDSTimeout, Transport: &http.Transport{Proxy: nil}}
	do := func(method, path string, hdr map[string]string) (string, int, error) {
		ctx, cancel := context.WithTimeout(ctx, p.IMDSTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(p.IMDSEndpoint, "/")+path, nil)
		if err != nil {
			return "", 0, err
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return strings.TrimSpace(string(b)), resp.StatusCode, err
	}
	tok, code, err := do(http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
	if err != nil {
		f.err = fmt.Errorf("token request: %s", netErrText(err))
		return f
	}
	if code != http.StatusOK {
		f.err = fmt.Errorf("token request: HTTP %d", code)
		return f
	}
	f.token = tok
	get := func(path string) (string, int, error) {
		return do(http.MethodGet, path, map[string]string{"X-aws-ec2-metadata-token": tok})
	}
	if v, code, err := get("/latest/meta-data/instance-id"); err != nil || code != 200 {
		f.err = fmt.Errorf("instance-id: %s", httpErr(code, err))
		return f
	} else {
		f.instanceID = v
	}
	if v, code, err := get("/latest/meta-data/placement/region"); err == nil && code == 200 {
		f.region = v
	}
	role, code, err := get("/latest/meta-data/iam/security-credentials/")
	if err != nil || code != 200 || role == "" {
		return f
	}
	f.role = strings.SplitN(role, "\n", 2)[0]
	body, code, err := get("/latest/meta-data/iam/security-credentials/" + f.role)
	if err != nil || code != 200 {
		f.credsErr = errors.New(httpErr(code, err))
		return f
	}
	// Only Code and Expiration are read: the keys never leave this function.
	var creds struct{ Code, Expiration string }
	if err := json.Unmarshal([]byte(body), &creds); err != nil {
		f.credsErr = errors.New("the credentials document is not JSON")
		return f
	}
	if creds.Code != "Success" {
		f.credsErr = fmt.Errorf("IMDS says %s", creds.Code)
		return f
	}
	f.credsExpire = creds.Expiration
	return f
}

func httpErr(code int, err error) string {
	if err != nil {
		return netErrText(err)
	}
	return fmt.Sprintf("HTTP %d", code)
}

func netErrText(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// endpoint resolves, dials and shakes hands with one service endpoint.
func (p *Prober) endpoint(ctx context.Context, service, region string) (doctor.Check, doctor.Check) {
	hostport := p.Endpoint(service, region)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		c := doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("bad endpoint %q: %v", hostport, err)}
		return c, skipf("no endpoint")
	}
	dctx, cancel := context.WithTimeout(ctx, p.Timeout)
	addrs, err := p.Resolver.LookupIPAddr(dctx, host)
	cancel()
	if err != nil || len(addrs) == 0 {
		return doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("%s does not resolve: %s", host, errOr(err, "no addresses")),
			Fix: "check /etc/resolv.conf and the VPC's DNS (enableDnsSupport); with interface endpoints turn on private DNS (terraform/modules/vpc-endpoints)"}, skipf("%s does not resolve", host)
	}
	var ips []string
	private := true
	for _, a := range addrs {
		ips = append(ips, a.IP.String())
		if ip, ok := netip.AddrFromSlice(a.IP); !ok || !(ip.Unmap().IsPrivate() || ip.Unmap().IsLoopback()) {
			private = false
		}
	}
	dnsCheck := doctor.Check{Status: doctor.Pass, Summary: host + " resolves to public addresses", Evidence: ips}
	if private {
		dnsCheck.Summary = host + " resolves to private addresses (an interface endpoint with private DNS)"
	}
	// TCP and TLS to the first address, named by host for SNI and
	// verification.
	target := net.JoinHostPort(addrs[0].IP.String(), port)
	tctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(tctx, "tcp", target)
	if err != nil {
		return dnsCheck, doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("cannot connect to %s: %s", target, netErrText(err)),
			Fix: "allow TCP 443 out in the instance's security group and network ACL, and 443 in on the endpoint's security group (terraform/modules/vpc-endpoints allowed_cidr_blocks)"}
	}
	defer conn.Close()
	cfg := &tls.Config{}
	if p.TLSConfig != nil {
		cfg = p.TLSConfig.Clone()
	}
	cfg.ServerName = host
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(tctx); err != nil {
		msg := netErrText(err)
		if errors.Is(tctx.Err(), context.DeadlineExceeded) {
			msg = "timed out"
		}
		return dnsCheck, doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("TLS handshake with %s failed: %s", target, msg),
			Fix: "a proxy or firewall intercepts TLS, or the endpoint is unreachable: check HTTPS_PROXY and the agent's proxy settings"}
	}
	st := tc.ConnectionState()
	return dnsCheck, doctor.Check{Status: doctor.Pass, Summary: fmt.Sprintf("TCP 443 and TLS to %s work", host),
		Evidence: []string{"address " + target, "TLS " + tls.VersionName(st.Version)}}
}

func errOr(err error, s string) string {
	if err != nil {
		return netErrText(err)
	}
	return s
}

// clock compares the local clock with the ssm endpoint's Date header.
func (p *Prober) clock(ctx context.Context, region string) doctor.Check {
	hostport := p.Endpoint("ssm", region)
	cfg := &tls.Config{}
	if p.TLSConfig != nil {
		cfg = p.TLSConfig.Clone()
	}
	// Dial through p.Resolver so the clock is read from the same address
	// the other probes use.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		addrs, err := p.Resolver.LookupIPAddr(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("resolving %s: %s", host, errOr(err, "no addresses"))
		}
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(addrs[0].IP.String(), port))
	}
	client := &http.Client{Timeout: p.Timeout, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil, DialContext: dial}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+hostport+"/ping", nil)
	if err != nil {
		return skipf("bad endpoint %q", hostport)
	}
	before := p.Now()
	resp, err := client.Do(req)
	if err != nil {
		return skipf("cannot read the time from %s: %s", hostport, netErrText(err))
	}
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return skipf("%s sent no usable Date header", hostport)
	}
	skew := before.Sub(date)
	if skew < 0 {
		skew = -skew
	}
	ev := []string{"local " + before.UTC().Format(time.RFC1123), "endpoint " + date.UTC().Format(time.RFC1123)}
	fix := "sync the clock: sudo chronyc makestep (Amazon Time Sync Service: 169.254.169.123)"
	switch {
	case skew > maxSkew:
		return doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("the clock is off by %s: AWS rejects signatures more than 5 minutes off", skew.Round(time.Second)), Evidence: ev, Fix: fix}
	case skew > time.Minute:
		return doctor.Check{Status: doctor.Warn, Summary: fmt.Sprintf("the clock is off by %s", skew.Round(time.Second)), Evidence: ev, Fix: fix}
	}
	return doctor.Check{Status: doctor.Pass, Summary: "the clock agrees with the endpoint", Evidence: ev}
}

// proxy reports the proxy the agent would use.
func (p *Prober) proxy(region string) doctor.Check {
	get := func(k string) string {
		if v := p.Getenv(k); v != "" {
			return v
		}
		return p.Getenv(strings.ToLower(k))
	}
	proxy, noProxy := get("HTTPS_PROXY"), get("NO_PROXY")
	if proxy == "" {
		return doctor.Check{Status: doctor.Pass, Summary: "no HTTPS proxy is set"}
	}
	shown := redactProxy(proxy)
	ev := []string{"HTTPS_PROXY=" + shown, "NO_PROXY=" + noProxy}
	return doctor.Check{Status: doctor.Warn, Summary: "connections go through proxy " + shown + ": it must allow CONNECT to the Systems Manager endpoints and websockets",
		Evidence: ev, Fix: "set the proxy for the agent too (systemctl edit amazon-ssm-agent), or add .amazonaws.com and 169.254.169.254 to NO_PROXY when endpoints are private"}
}

// disk checks the free space where the agent writes.
func (p *Prober) disk() doctor.Check {
	dir := p.AgentDir
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	free, err := p.FreeBytes(dir)
	if err != nil {
		return skipf("cannot read the free space of %s: %v", dir, err)
	}
	ev := []string{fmt.Sprintf("%s: %d MiB free", dir, free>>20)}
	if free < MinFreeBytes {
		return doctor.Check{Status: doctor.Fail, Summary: fmt.Sprintf("only %d MiB free under %s: the agent cannot write its state and logs", free>>20, dir),
			Evidence: ev, Fix: "free disk space under " + dir + " (old logs: /var/log/amazon/ssm)"}
	}
	return doctor.Check{Status: doctor.Pass, Summary: "enough free disk space for the agent", Evidence: ev}
}

func systemAgentStatus(ctx context.Context) (bool, string, error) {
	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).Output()
		return strings.TrimSpace(string(out)), err
	}
	// is-active prints the state even when it exits non-zero.
	if out, _ := run("systemctl", "is-active", "amazon-ssm-agent"); out != "" && out != "unknown" && !strings.Contains(out, "not-found") {
		return out == "active", "systemctl is-active amazon-ssm-agent: " + out, nil
	}
	if out, err := run("snap", "services", "amazon-ssm-agent"); err == nil && out != "" {
		return strings.Contains(out, " active"), "snap services amazon-ssm-agent", nil
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, pth := range procs {
		b, err := os.ReadFile(pth)
		if err == nil && strings.TrimSpace(string(b)) == "amazon-ssm-agent" {
			return true, "process " + filepath.Base(filepath.Dir(pth)), nil
		}
	}
	if _, err := exec.LookPath("amazon-ssm-agent"); err != nil {
		return false, "", errors.New("no amazon-ssm-agent service, snap or process")
	}
	return false, "no amazon-ssm-agent process", nil
}

func systemAgentVersion(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, bin := range []string{"amazon-ssm-agent", "/snap/amazon-ssm-agent/current/amazon-ssm-agent"} {
		out, err := exec.CommandContext(ctx, bin, "--version").Output()
		if err != nil {
			continue
		}
		f := strings.Fields(string(out))
		if len(f) > 0 && version.Valid(f[len(f)-1]) {
			return f[len(f)-1], nil
		}
	}
	return "", errors.New("amazon-ssm-agent --version gave no version")
}

// redactProxy hides the user information of a proxy URL. It does not rely
// on URL parsing, which gives up on passwords with reserved characters and
// would then leave them in place.
func redactProxy(proxy string) string {
	rest, scheme := proxy, ""
	if i := strings.Index(proxy, "://"); i >= 0 {
		scheme, rest = proxy[:i+3], proxy[i+3:]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		return scheme + "REDACTED@" + rest[i+1:]
	}
	return proxy
}
