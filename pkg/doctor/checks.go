package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

// CheckIDs lists every outside-in check in the order reports show them.
// Every InstanceReport has exactly these checks, so consumers of --json can
// rely on each ID being present.
var CheckIDs = []string{
	"instance.running",
	"agent.online",
	"agent.version",
	"agent.feature.kms-encryption",
	"agent.feature.shell-profile",
	"agent.feature.port-forwarding",
	"agent.feature.cloudwatch-streaming",
	"agent.feature.remote-host",
	"agent.feature.default-host-management",
	"identity.profile",
	"identity.role-trust",
	"identity.core-policy",
	"network.route",
	"network.vpc-dns",
	"network.endpoints",
	"network.endpoints.private-dns",
	"network.endpoint-sg-443",
	"network.endpoint-policy",
	"network.instance-sg-egress-443",
	"network.nacl",
	"network.logging-path",
	"prefs.document",
	"prefs.idle-timeout",
	"prefs.max-duration",
	"logging.s3-bucket",
	"logging.s3-encryption",
	"logging.cw-log-group",
	"logging.cw-encryption",
	"logging.role-access",
	"kms.key-enabled",
	"kms.key-policy",
	"caller.identity",
	"caller.start-session",
}

// Agent version gates.
const (
	// MinAgentVersion is the oldest agent Session Manager supports.
	MinAgentVersion = "2.3.68.0"
	// KMSAgentVersion adds KMS encryption of session data.
	KMSAgentVersion = "2.3.539.0"
	// ShellProfileAgentVersion adds shell profiles.
	ShellProfileAgentVersion = "3.0.161.0"
	// PortForwardingAgentVersion adds port forwarding.
	PortForwardingAgentVersion = "3.0.222.0"
	// CloudWatchStreamingAgentVersion adds streaming session logs to CloudWatch.
	CloudWatchStreamingAgentVersion = "3.0.284.0"
	// RemoteHostAgentVersion adds port forwarding to remote hosts.
	RemoteHostAgentVersion = "3.1.1374.0"
	// DHMAgentVersion adds default host management.
	DHMAgentVersion = "3.2.582.0"
)

// sessionActions are what the agent's role must allow for sessions; the
// rest of AmazonSSMManagedInstanceCore serves Run Command and inventory.
var sessionActions = []string{
	"ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
}

// endpointServices are the interface endpoints the agent needs.
var endpointServices = []string{"ssm", "ssmmessages", "ec2messages"}

// Run checks every target in f.
func Run(f *Facts, now time.Time) Report {
	var reports []InstanceReport
	for id := range f.Instances {
		reports = append(reports, CheckInstance(f, id, now))
	}
	for target, why := range f.Missing {
		reports = append(reports, missingReport(target, why))
	}
	return NewReport(reports)
}

func missingReport(target, why string) InstanceReport {
	r := InstanceReport{ID: target}
	for _, id := range CheckIDs {
		c := Check{ID: id, Status: Skip, Summary: "the target was not found"}
		if id == "instance.running" {
			c = Check{ID: id, Status: Fail, Summary: why,
				Fix: "check the instance ID or Name tag and --region: `aws ec2 describe-instances --filters Name=tag:Name,Values=" + target + "`"}
		}
		r.Checks = append(r.Checks, c)
	}
	return r
}

// target is one instance with the facts around it resolved.
type target struct {
	f       *Facts
	now     time.Time
	inst    *Instance
	managed *Managed
	vpc     *VPC
	subnet  Subnet
	hybrid  bool

	role      *Role
	roleVia   string // "profile" or "dhm"
	path      netPath
	endpoints map[string]Endpoint // interface endpoints by short service name
}

// netPath is how the instance reaches the regional endpoints without VPC
// endpoints.
type netPath struct {
	kind     string // "igw", "nat", "other", "none"
	target   string
	table    string
	evidence []string
}

func (p netPath) internet() bool { return p.kind == "igw" || p.kind == "nat" || p.kind == "other" }

// CheckInstance runs every check for one instance of f.
func CheckInstance(f *Facts, id string, now time.Time) InstanceReport {
	t := &target{f: f, now: now, inst: f.Instances[id], managed: f.Managed[id], endpoints: map[string]Endpoint{}}
	t.hybrid = t.inst.State == "hybrid"
	t.vpc = f.VPCs[t.inst.VpcID]
	if t.vpc != nil {
		t.subnet = t.vpc.Subnets[t.inst.SubnetID]
		t.path = t.findPath()
		for _, e := range t.vpc.Endpoints {
			if e.Type == "Interface" && contains(endpointServices, e.Service) {
				t.endpoints[e.Service] = e
			}
		}
	}
	t.resolveRole()
	r := InstanceReport{ID: id, Name: t.inst.Name}
	for _, fn := range []func() Check{
		t.instanceRunning, t.agentOnline, t.agentVersion,
		t.featureKMS, t.featureShellProfile, t.featurePortForwarding, t.featureCWStreaming, t.featureRemoteHost, t.featureDHM,
		t.identityProfile, t.identityTrust, t.identityCorePolicy,
		t.networkRoute, t.networkVPCDNS, t.networkEndpoints, t.networkPrivateDNS, t.networkEndpointSG, t.networkEndpointPolicy,
		t.networkInstanceSG, t.networkNACL, t.networkLoggingPath,
		t.prefsDocument, t.prefsIdle, t.prefsMax,
		t.loggingS3, t.loggingS3Encryption, t.loggingCW, t.loggingCWEncryption, t.loggingRoleAccess,
		t.kmsEnabled, t.kmsPolicy, t.callerIdentity, t.callerStartSession,
	} {
		r.Checks = append(r.Checks, fn())
	}
	for i := range r.Checks {
		r.Checks[i].ID = CheckIDs[i]
	}
	return r
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func pass(summary string, evidence ...string) Check {
	return Check{Status: Pass, Summary: summary, Evidence: evidence}
}

func skip(format string, args ...any) Check {
	return Check{Status: Skip, Summary: fmt.Sprintf(format, args...)}
}

func failf(fix, format string, args ...any) Check {
	return Check{Status: Fail, Summary: fmt.Sprintf(format, args...), Fix: fix}
}

func warnf(fix, format string, args ...any) Check {
	return Check{Status: Warn, Summary: fmt.Sprintf(format, args...), Fix: fix}
}

func (c Check) with(evidence ...string) Check {
	c.Evidence = append(c.Evidence, evidence...)
	return c
}

// --- instance and agent ---

func (t *target) instanceRunning() Check {
	if t.hybrid {
		return skip("hybrid managed node: not an EC2 instance")
	}
	if t.inst.State != "running" {
		return failf(fmt.Sprintf("aws ec2 start-instances --instance-ids %s", t.inst.ID),
			"the instance is %s", t.inst.State).with("State=" + t.inst.State)
	}
	return pass("the instance is running", "State=running", "AvailabilityZone="+t.inst.AvailabilityZone)
}

const agentFix = "on the instance run `ssmkit doctor --local`, then `sudo systemctl restart amazon-ssm-agent` (snap: `sudo snap restart amazon-ssm-agent`)"

func (t *target) agentOnline() Check {
	if t.f.ManagedErr != nil {
		return skip("cannot list managed nodes: %s", shortErr(t.f.ManagedErr))
	}
	m := t.managed
	if m == nil {
		return failf(agentFix+"; the agent needs an instance profile and a network path (see identity.* and network.*)",
			"not a managed node: the SSM Agent has never registered")
	}
	ev := []string{"PingStatus=" + m.PingStatus, "LastPing=" + since(t.now, m.LastPing), "Platform=" + strings.TrimSpace(m.PlatformType+" "+m.PlatformName)}
	if m.PingStatus != "Online" {
		return failf(agentFix, "the SSM Agent is not connected (%s, last seen %s)", m.PingStatus, since(t.now, m.LastPing)).with(ev...)
	}
	return pass("the SSM Agent is online", ev...)
}

func updateAgentFix(id string) string {
	return fmt.Sprintf("aws ssm send-command --document-name AWS-UpdateSSMAgent --targets Key=InstanceIds,Values=%s", id)
}

func (t *target) agentVersion() Check {
	if t.managed == nil || t.managed.AgentVersion == "" {
		return skip("agent version unknown: not a managed node")
	}
	v := t.managed.AgentVersion
	if version.AgentCompare(v, MinAgentVersion) < 0 {
		return failf(updateAgentFix(t.inst.ID), "SSM Agent %s is older than %s, the oldest Session Manager supports", v, MinAgentVersion).with("AgentVersion=" + v)
	}
	return pass("SSM Agent "+v, "AgentVersion="+v)
}

// gate checks a feature gate; used says whether this configuration needs
// the feature (a fail when too old) or merely may use it (a warn).
func (t *target) gate(feature, min string, used bool, why string) Check {
	if t.managed == nil || t.managed.AgentVersion == "" {
		return skip("agent version unknown: not a managed node")
	}
	v := t.managed.AgentVersion
	if !used && why != "" {
		return skip("%s", why)
	}
	if version.AgentCompare(v, min) >= 0 {
		return pass(fmt.Sprintf("%s is supported (agent %s ≥ %s)", feature, v, min))
	}
	c := warnf(updateAgentFix(t.inst.ID), "%s needs agent %s, this one is %s", feature, min, v)
	if used {
		c.Status = Fail
		c.Summary += "; this configuration uses it"
	}
	return c.with("AgentVersion=" + v)
}

func (t *target) prefs() *Prefs {
	if t.f.Prefs == nil || t.f.Prefs.Err != nil {
		return &Prefs{}
	}
	return t.f.Prefs
}

func (t *target) featureKMS() Check {
	p := t.prefs()
	return t.gate("KMS encryption", KMSAgentVersion, p.KMSKeyID != "", "KMS encryption is not configured")
}

func (t *target) featureShellProfile() Check {
	p := t.prefs()
	return t.gate("shell profiles", ShellProfileAgentVersion, p.ShellProfileLinux != "" || p.ShellProfileWindows != "", "no shell profile is configured")
}

func (t *target) featurePortForwarding() Check {
	return t.gate("port forwarding", PortForwardingAgentVersion, false, "")
}

func (t *target) featureCWStreaming() Check {
	p := t.prefs()
	return t.gate("CloudWatch streaming", CloudWatchStreamingAgentVersion, p.LogGroup != "" && p.CWStreaming, "CloudWatch streaming is not configured")
}

func (t *target) featureRemoteHost() Check {
	return t.gate("port forwarding to remote hosts", RemoteHostAgentVersion, false, "")
}

func (t *target) featureDHM() Check {
	return t.gate("default host management", DHMAgentVersion, t.roleVia == "dhm", "the instance has an instance profile")
}

// --- identity ---

func (t *target) resolveRole() {
	if t.hybrid {
		return
	}
	if arn := t.inst.ProfileARN; arn != "" {
		if p := t.f.Profiles[arn]; p != nil && p.RoleName != "" {
			t.role, t.roleVia = t.f.Roles[p.RoleName], "profile"
		}
		return
	}
	if d := t.f.DHM; d != nil && d.Err == nil && d.Value != "" && d.Value != "$None" && t.inst.HTTPTokens == "required" {
		t.role, t.roleVia = t.f.Roles[d.Value[strings.LastIndex(d.Value, "/")+1:]], "dhm"
	}
}

func (t *target) identityProfile() Check {
	if t.hybrid {
		return skip("hybrid managed node: its activation's role applies")
	}
	id := t.inst.ID
	profileFix := fmt.Sprintf("aws ec2 associate-iam-instance-profile --instance-id %s --iam-instance-profile Name=<profile> "+
		"(create one with the ssmkit Terraform module terraform/modules/instance-role), or turn on default host management "+
		"(terraform/modules/default-host-management) and require IMDSv2", id)
	if arn := t.inst.ProfileARN; arn != "" {
		p := t.f.Profiles[arn]
		switch {
		case p == nil:
			return skip("instance profile %s was not read", arn)
		case p.Err != nil && apiCode(p.Err) == "NoSuchEntity":
			return failf(profileFix, "instance profile %s does not exist", p.Name)
		case p.Err != nil:
			return skip("cannot read instance profile %s: %s", p.Name, shortErr(p.Err))
		case p.RoleName == "":
			return failf(fmt.Sprintf("aws iam add-role-to-instance-profile --instance-profile-name %s --role-name <role>", p.Name),
				"instance profile %s has no role", p.Name)
		}
		return pass(fmt.Sprintf("instance profile %s with role %s", p.Name, p.RoleName), "IamInstanceProfile="+arn)
	}
	d := t.f.DHM
	switch {
	case d == nil:
		return failf(profileFix, "the instance has no instance profile")
	case d.Err != nil:
		return failf(profileFix, "the instance has no instance profile, and default host management could not be read: %s", shortErr(d.Err))
	case d.Value == "" || d.Value == "$None":
		return failf(profileFix, "the instance has no instance profile and default host management is off").with(DHMSettingID + "=" + d.Value)
	case t.inst.HTTPTokens != "required":
		return failf(fmt.Sprintf("aws ec2 modify-instance-metadata-options --instance-id %s --http-tokens required", id),
			"no instance profile; default host management is on but needs IMDSv2 only (HttpTokens=%s)", t.inst.HTTPTokens)
	}
	return pass("no instance profile; default host management uses role "+d.Value, DHMSettingID+"="+d.Value, "HttpTokens=required")
}

func (t *target) identityTrust() Check {
	if t.role == nil {
		return skip("no role to check")
	}
	r := t.role
	if r.Trust == nil {
		return skip("cannot read the trust policy of %s: %s", r.Name, errText(r.Err))
	}
	svc := "ec2.amazonaws.com"
	if t.roleVia == "dhm" {
		svc = "ssm.amazonaws.com"
	}
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"%s"},"Action":"sts:AssumeRole"}]}`, svc)
	fix := fmt.Sprintf("aws iam update-assume-role-policy --role-name %s --policy-document '%s'", r.Name, trust)
	switch policy.Evaluate([]policy.Document{*r.Trust}, policy.Request{Action: "sts:AssumeRole", Principal: "Service:" + svc}).Decision {
	case policy.Allowed:
		return pass(fmt.Sprintf("role %s trusts %s", r.Name, svc))
	case policy.Conditional:
		return warnf(fix, "role %s trusts %s only under a condition", r.Name, svc)
	}
	return failf(fix, "role %s does not trust %s", r.Name, svc)
}

func (t *target) identityCorePolicy() Check {
	if t.role == nil {
		return skip("no role to check")
	}
	r := t.role
	if r.Err != nil {
		return skip("cannot read the policies of role %s: %s", r.Name, shortErr(r.Err))
	}
	fix := fmt.Sprintf("aws iam attach-role-policy --role-name %s --policy-arn %s (Terraform: terraform/modules/instance-role)", r.Name, CorePolicyARN)
	instARN := instanceARN(t.f, t.inst.ID)
	var denied, conditional, otherMissing []string
	for _, a := range sessionActions {
		res := "*"
		if a == "ssm:UpdateInstanceInformation" {
			res = instARN
		}
		switch d := policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: res}); d.Decision {
		case policy.Allowed:
		case policy.Conditional:
			conditional = append(conditional, a+" ("+d.By+")")
		default:
			denied = append(denied, a+" ("+d.Decision.String()+")")
		}
	}
	for _, a := range t.f.CoreActions {
		if contains(sessionActions, a) {
			continue
		}
		res := "*"
		if strings.HasPrefix(a, "ssm:") {
			res = instARN
		}
		if policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: "*"}).Decision != policy.Allowed && policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: res}).Decision != policy.Allowed {
			otherMissing = append(otherMissing, a)
		}
	}
	ev := []string{"policies: " + strings.Join(orNone(r.PolicyNames), ", "), "core actions from " + t.f.CoreSource,
		"not evaluated: permissions boundaries, SCPs"}
	switch {
	case len(denied) > 0:
		return failf(fix, "role %s does not allow %s", r.Name, strings.Join(denied, ", ")).with(ev...)
	case len(conditional) > 0:
		return warnf(fix, "role %s allows %s only under conditions", r.Name, strings.Join(conditional, ", ")).with(ev...)
	case len(otherMissing) > 0:
		return warnf(fix, "role %s allows sessions but not %d other actions of AmazonSSMManagedInstanceCore (Run Command, inventory): %s",
			r.Name, len(otherMissing), strings.Join(otherMissing, ", ")).with(ev...)
	}
	return pass(fmt.Sprintf("role %s grants what AmazonSSMManagedInstanceCore grants", r.Name), ev...)
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return shortErr(err)
}

// --- network ---

func (t *target) networkSkip() (Check, bool) {
	switch {
	case t.hybrid:
		return skip("hybrid managed node: its network is not in this account's VPCs"), true
	case t.vpc == nil:
		return skip("the instance is in no VPC"), true
	case t.vpc.Err != nil:
		return skip("cannot describe %s: %s", t.vpc.ID, shortErr(t.vpc.Err)), true
	}
	return Check{}, false
}

// routeTable returns the subnet's route table: its own or the VPC's main.
func (t *target) routeTable() *RouteTable {
	var main *RouteTable
	for i, rt := range t.vpc.RouteTables {
		if contains(rt.SubnetIDs, t.inst.SubnetID) {
			return &t.vpc.RouteTables[i]
		}
		if rt.Main {
			main = &t.vpc.RouteTables[i]
		}
	}
	return main
}

func (t *target) findPath() netPath {
	p := netPath{kind: "none"}
	rt := t.routeTable()
	if rt == nil {
		p.evidence = append(p.evidence, "no route table for "+t.inst.SubnetID)
		return p
	}
	p.table = rt.ID
	for _, r := range rt.Routes {
		if r.Destination != "0.0.0.0/0" {
			continue
		}
		p.evidence = append(p.evidence, fmt.Sprintf("%s: 0.0.0.0/0 → %s (%s)", rt.ID, r.Target, r.State))
		if r.State == "blackhole" {
			continue
		}
		switch {
		case strings.HasPrefix(r.Target, "igw-"):
			if t.inst.PublicIP == "" {
				p.evidence = append(p.evidence, "the instance has no public IP, so the internet gateway route does not serve it")
				continue
			}
			p.kind, p.target = "igw", r.Target
			p.evidence = append(p.evidence, "PublicIp="+t.inst.PublicIP)
		case strings.HasPrefix(r.Target, "nat-"):
			p.kind, p.target = "nat", r.Target
		default:
			p.kind, p.target = "other", r.Target
		}
	}
	if len(p.evidence) == 0 {
		p.evidence = append(p.evidence, rt.ID+": no default route")
	}
	return p
}

func (t *target) endpointsComplete() bool {
	for _, s := range endpointServices {
		if _, ok := t.endpoints[s]; !ok {
			return false
		}
	}
	return true
}

// endpointsUsed reports whether DNS sends the agent to the interface
// endpoints (private DNS on) or they are the only way out.
func (t *target) endpointsUsed() bool {
	for _, e := range t.endpoints {
		if e.PrivateDNS {
			return true
		}
	}
	return len(t.endpoints) > 0 && !t.path.internet()
}

func (t *target) vpcEndpointsFix() string {
	return fmt.Sprintf("Terraform: terraform/modules/vpc-endpoints with vpc_id = %q and subnet_ids = [%q]", t.inst.VpcID, t.inst.SubnetID)
}

func (t *target) networkRoute() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	p := t.path
	switch p.kind {
	case "igw":
		return pass("default route through internet gateway "+p.target+" and a public IP", p.evidence...)
	case "nat":
		return pass("default route through NAT gateway "+p.target, p.evidence...)
	case "other":
		return warnf("", "default route through %s: ssmkit cannot see whether it reaches the internet", p.target).with(p.evidence...)
	}
	if t.endpointsComplete() {
		return pass("no internet route; the VPC has interface endpoints for ssm, ssmmessages and ec2messages", p.evidence...)
	}
	fix := fmt.Sprintf("add a default route through a NAT gateway: `aws ec2 create-route --route-table-id %s --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat-id>`, or create the interface endpoints (%s)",
		orUnknown(p.table), t.vpcEndpointsFix())
	return failf(fix, "no path to Systems Manager: no internet or NAT route and no interface endpoints for %s", strings.Join(t.missingEndpoints(), ", ")).with(p.evidence...)
}

func orUnknown(s string) string {
	if s == "" {
		return "<route-table-id>"
	}
	return s
}

func (t *target) missingEndpoints() []string {
	var out []string
	for _, s := range endpointServices {
		if _, ok := t.endpoints[s]; !ok {
			out = append(out, s)
		}
	}
	return out
}

func (t *target) networkVPCDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	v := t.vpc
	ev := []string{fmt.Sprintf("enableDnsSupport=%s", boolText(v.DNSSupport)), fmt.Sprintf("enableDnsHostnames=%s", boolText(v.DNSHostnames))}
	if v.DNSSupport != nil && !*v.DNSSupport {
		return failf(fmt.Sprintf("aws ec2 modify-vpc-attribute --vpc-id %s --enable-dns-support", v.ID),
			"DNS resolution is off in %s: the instance cannot resolve the SSM endpoints", v.ID).with(ev...)
	}
	if len(t.endpoints) > 0 && v.DNSHostnames != nil && !*v.DNSHostnames {
		return failf(fmt.Sprintf("aws ec2 modify-vpc-attribute --vpc-id %s --enable-dns-hostnames", v.ID),
			"DNS hostnames are off in %s: private DNS of interface endpoints does not work", v.ID).with(ev...)
	}
	if v.DNSSupport == nil {
		return skip("the DNS attributes of %s are unknown", v.ID)
	}
	return pass("VPC DNS is on", ev...)
}

func boolText(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

func (t *target) networkEndpoints() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		if t.path.internet() {
			return skip("no interface endpoints: the instance reaches Systems Manager through %s", t.path.target)
		}
		return skip("no interface endpoints (see network.route)")
	}
	var problems, ev []string
	for _, s := range endpointServices {
		e, ok := t.endpoints[s]
		if !ok {
			problems = append(problems, s+" has no endpoint")
			continue
		}
		ev = append(ev, fmt.Sprintf("%s: %s %s", s, e.ID, e.State))
		if e.State != "available" {
			problems = append(problems, fmt.Sprintf("%s endpoint %s is %s", s, e.ID, e.State))
		}
		inAZ := false
		for _, sid := range e.SubnetIDs {
			if sn, ok := t.vpc.Subnets[sid]; ok && sn.AvailabilityZone == t.subnet.AvailabilityZone {
				inAZ = true
			}
		}
		if !inAZ {
			problems = append(problems, fmt.Sprintf("%s endpoint %s has no subnet in %s", s, e.ID, t.subnet.AvailabilityZone))
		}
	}
	if len(problems) == 0 {
		return pass("interface endpoints for ssm, ssmmessages and ec2messages are available in "+t.subnet.AvailabilityZone, ev...)
	}
	c := failf(t.vpcEndpointsFix(), "%s", strings.Join(problems, "; ")).with(ev...)
	if t.path.internet() {
		c.Status = Warn
	}
	return c
}

func (t *target) networkPrivateDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	var off []string
	var fixes []string
	for _, s := range endpointServices {
		if e, ok := t.endpoints[s]; ok && !e.PrivateDNS {
			off = append(off, fmt.Sprintf("%s (%s)", s, e.ID))
			fixes = append(fixes, fmt.Sprintf("aws ec2 modify-vpc-endpoint --vpc-endpoint-id %s --private-dns-enabled", e.ID))
		}
	}
	if len(off) == 0 {
		return pass("private DNS is on for every interface endpoint")
	}
	fix := strings.Join(fixes, " && ") + " (Terraform: terraform/modules/vpc-endpoints turns it on)"
	if t.path.internet() {
		return warnf(fix, "private DNS is off for %s: the agent bypasses these endpoints and goes through %s", strings.Join(off, ", "), t.path.target)
	}
	return failf(fix, "private DNS is off for %s: the agent resolves the public names, which this subnet cannot reach", strings.Join(off, ", "))
}

// sgAllows reports whether rules allow TCP port from/to ip or one of groups.
func sgAllows(rules []SGRule, port int32, ip netip.Addr, groups []string) (bool, bool) {
	prefixOnly := false
	for _, r := range rules {
		if r.Protocol != "-1" && r.Protocol != "tcp" && r.Protocol != "6" {
			continue
		}
		if r.Protocol != "-1" && (port < r.From || port > r.To) {
			continue
		}
		for _, c := range r.CIDRs {
			if pfx, err := netip.ParsePrefix(c); err == nil && ip.IsValid() && pfx.Contains(ip) {
				return true, false
			}
		}
		for _, g := range r.Groups {
			if contains(groups, g) {
				return true, false
			}
		}
		if len(r.PrefixLists) > 0 {
			prefixOnly = true
		}
	}
	return false, prefixOnly
}

func (t *target) usedEndpoints() []Endpoint {
	var out []Endpoint
	for _, s := range endpointServices {
		if e, ok := t.endpoints[s]; ok {
			out = append(out, e)
		}
	}
	return out
}

func (t *target) networkEndpointSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	ip, _ := netip.ParseAddr(t.inst.PrivateIP)
	var bad, ev, fixes []string
	for _, e := range t.usedEndpoints() {
		ok := false
		for _, g := range e.SecurityGroups {
			sg, found := t.vpc.SecurityGroups[g]
			if !found {
				continue
			}
			if allowed, _ := sgAllows(sg.Ingress, 443, ip, t.inst.SecurityGroups); allowed {
				ok = true
			}
		}
		ev = append(ev, fmt.Sprintf("%s %s groups %s", e.Service, e.ID, strings.Join(orNone(e.SecurityGroups), ",")))
		if !ok {
			bad = append(bad, e.Service)
			sg := "<endpoint-sg>"
			if len(e.SecurityGroups) > 0 {
				sg = e.SecurityGroups[0]
			}
			fixes = append(fixes, fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port 443 --cidr %s", sg, orDefault(t.vpc.CIDR, t.inst.PrivateIP+"/32")))
		}
	}
	if len(bad) == 0 {
		return pass("endpoint security groups allow TCP 443 from the instance", ev...)
	}
	fixes = uniq(fixes)
	fix := strings.Join(fixes, " && ") + " (Terraform: terraform/modules/vpc-endpoints allowed_cidr_blocks or allowed_security_group_ids)"
	c := failf(fix, "the security groups of the %s endpoints do not allow TCP 443 from %s", strings.Join(bad, ", "), t.inst.PrivateIP).with(ev...)
	if !t.endpointsUsed() {
		c.Status = Warn
	}
	return c
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func (t *target) networkEndpointPolicy() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	need := map[string][]string{
		"ssm":         {"ssm:UpdateInstanceInformation"},
		"ssmmessages": {"ssmmessages:CreateControlChannel", "ssmmessages:OpenControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenDataChannel"},
		"ec2messages": {"ec2messages:GetMessages"},
	}
	var bad []string
	var fixes []string
	for _, e := range t.usedEndpoints() {
		if strings.TrimSpace(e.Policy) == "" {
			continue
		}
		d, err := policy.Parse(e.ID, e.Policy)
		if err != nil {
			bad = append(bad, e.ID+": "+err.Error())
			continue
		}
		for _, a := range need[e.Service] {
			if r := policy.Evaluate([]policy.Document{d}, policy.Request{Action: a, Resource: "*"}); r.Decision != policy.Allowed {
				bad = append(bad, fmt.Sprintf("%s: %s %s", e.ID, a, r.Decision))
				fixes = append(fixes, "aws ec2 modify-vpc-endpoint --vpc-endpoint-id "+e.ID+" --reset-policy")
			}
		}
	}
	if len(bad) == 0 {
		return pass("endpoint policies allow the agent's actions")
	}
	return failf(strings.Join(uniq(fixes), " && "), "endpoint policies block the agent: %s", strings.Join(bad, "; "))
}

// sampleInternetIP stands for "somewhere on the internet" in rule checks.
var sampleInternetIP = netip.MustParseAddr("52.94.0.1")

// destinations are where the agent's TCP 443 connections go.
func (t *target) destinations() (ips []netip.Addr, groups []string, label string) {
	if t.endpointsUsed() {
		for _, e := range t.usedEndpoints() {
			groups = append(groups, e.SecurityGroups...)
			for _, sid := range e.SubnetIDs {
				if sn, ok := t.vpc.Subnets[sid]; ok {
					if pfx, err := netip.ParsePrefix(sn.CIDR); err == nil {
						ips = append(ips, pfx.Addr().Next().Next().Next().Next())
					}
				}
			}
		}
		return ips, groups, "the interface endpoints"
	}
	return []netip.Addr{sampleInternetIP}, nil, "the internet"
}

func (t *target) networkInstanceSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	ips, groups, label := t.destinations()
	var missing []string
	for _, ip := range ips {
		ok, prefix := false, false
		for _, g := range t.inst.SecurityGroups {
			sg, found := t.vpc.SecurityGroups[g]
			if !found {
				continue
			}
			a, p := sgAllows(sg.Egress, 443, ip, groups)
			ok, prefix = ok || a, prefix || p
		}
		if !ok && !prefix {
			missing = append(missing, ip.String())
		}
	}
	ev := []string{"instance groups: " + strings.Join(orNone(t.inst.SecurityGroups), ",")}
	if len(missing) == 0 && len(ips) > 0 {
		return pass("the instance's security groups allow TCP 443 out to "+label, ev...)
	}
	sg := "<instance-sg>"
	if len(t.inst.SecurityGroups) > 0 {
		sg = t.inst.SecurityGroups[0]
	}
	cidr := "0.0.0.0/0"
	if label != "the internet" {
		cidr = orDefault(t.vpc.CIDR, cidr)
	}
	return failf(fmt.Sprintf("aws ec2 authorize-security-group-egress --group-id %s --ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=%s}]'", sg, cidr),
		"the instance's security groups do not allow TCP 443 out to %s", label).with(ev...)
}

// naclDecision evaluates ACL rules in order for TCP port and ip.
func naclDecision(entries []NACLEntry, egress bool, port int32, ip netip.Addr) (bool, string) {
	sorted := append([]NACLEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Number < sorted[j].Number })
	for _, e := range sorted {
		if e.Egress != egress || (e.Protocol != "-1" && e.Protocol != "6") {
			continue
		}
		if e.Protocol == "6" && (port < e.From || port > e.To) {
			continue
		}
		pfx, err := netip.ParsePrefix(e.CIDR)
		if err != nil || !pfx.Contains(ip) {
			continue
		}
		return e.Allow, fmt.Sprintf("rule %d", e.Number)
	}
	return false, "no rule (default deny)"
}

func (t *target) networkNACL() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	var acl *NACL
	for i, a := range t.vpc.NACLs {
		if contains(a.SubnetIDs, t.inst.SubnetID) {
			acl = &t.vpc.NACLs[i]
		}
	}
	if acl == nil {
		for i, a := range t.vpc.NACLs {
			if a.Default {
				acl = &t.vpc.NACLs[i]
			}
		}
	}
	if acl == nil {
		return skip("no network ACL found for %s", t.inst.SubnetID)
	}
	ips, _, label := t.destinations()
	var problems []string
	for _, ip := range ips {
		if ok, by := naclDecision(acl.Entries, true, 443, ip); !ok {
			problems = append(problems, fmt.Sprintf("TCP 443 out to %s denied by %s", ip, by))
		}
		for _, port := range []int32{1024, 32768, 49152, 60999, 65535} {
			if ok, by := naclDecision(acl.Entries, false, port, ip); !ok {
				problems = append(problems, fmt.Sprintf("return traffic to port %d from %s denied by %s", port, ip, by))
				break
			}
		}
	}
	if len(problems) == 0 {
		return pass(fmt.Sprintf("network ACL %s allows TCP 443 out to %s and the replies back", acl.ID, label))
	}
	cidr := "0.0.0.0/0"
	if label != "the internet" {
		cidr = orDefault(t.vpc.CIDR, cidr)
	}
	fix := fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %[1]s --egress --rule-number 100 --protocol tcp --port-range From=443,To=443 --cidr-block %[2]s --rule-action allow && "+
		"aws ec2 create-network-acl-entry --network-acl-id %[1]s --ingress --rule-number 100 --protocol tcp --port-range From=1024,To=65535 --cidr-block %[2]s --rule-action allow", acl.ID, cidr)
	return failf(fix, "network ACL %s blocks the agent: %s", acl.ID, strings.Join(problems, "; "))
}

func (t *target) networkLoggingPath() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	p := t.prefs()
	need := map[string]bool{}
	if p.S3Bucket != "" {
		need["s3"] = true
	}
	if p.LogGroup != "" {
		need["logs"] = true
	}
	if p.KMSKeyID != "" || p.S3Encryption || p.CWEncryption {
		need["kms"] = true
	}
	if len(need) == 0 {
		return skip("session logging and KMS encryption are off")
	}
	if t.path.internet() {
		return pass("logging and KMS traffic goes through " + t.path.target)
	}
	have := map[string]bool{}
	for _, e := range t.vpc.Endpoints {
		if e.State == "available" {
			have[e.Service] = true
		}
	}
	var missing, vars []string
	for _, s := range []string{"s3", "logs", "kms"} {
		if need[s] && !have[s] {
			missing = append(missing, s)
			switch s {
			case "s3":
				vars = append(vars, "enable_s3_gateway_endpoint = true")
			case "logs":
				vars = append(vars, "enable_logs_endpoint = true")
			case "kms":
				vars = append(vars, "enable_kms_endpoint = true")
			}
		}
	}
	if len(missing) == 0 {
		return pass("the VPC has endpoints for logging and KMS")
	}
	return failf("Terraform: terraform/modules/vpc-endpoints with "+strings.Join(vars, ", "),
		"the preferences need %s, but the subnet has no internet path and the VPC has no endpoint for it", strings.Join(missing, ", "))
}

// --- preferences and logging ---

func prefsFix(doc string) string {
	return fmt.Sprintf("Terraform: terraform/modules/session-preferences (document_name = %q), or `aws ssm update-document --name %s --content file://prefs.json --document-version '$LATEST'`", doc, doc)
}

func (t *target) prefsDocument() Check {
	p := t.f.Prefs
	switch {
	case p == nil:
		return skip("the preferences were not read")
	case p.Err != nil && !p.Found:
		return skip("cannot read %s: %s", p.Document, shortErr(p.Err))
	case p.Err != nil:
		return failf(prefsFix(p.Document), "%s", p.Err.Error())
	case !p.Found:
		return pass(p.Document + " does not exist: Session Manager's defaults apply (20 minute idle timeout, no logging)")
	case len(p.UnknownSessionInputs) > 0:
		return warnf(prefsFix(p.Document), "%s has unknown inputs: %s", p.Document, strings.Join(p.UnknownSessionInputs, ", "))
	}
	return pass(p.Document+" parses", "document: "+p.Document)
}

func (t *target) prefsIdle() Check {
	p := t.f.Prefs
	if p == nil || p.Err != nil {
		return skip("the preferences could not be read")
	}
	if p.IdleTimeout == "" {
		return pass("idle timeout: the default 20 minutes")
	}
	if n, ok := minutes(p.IdleTimeout); !ok || n < 1 || n > 60 {
		return failf(prefsFix(p.Document)+" with idle_session_timeout between 1 and 60", "idleSessionTimeout %q is not 1–60 minutes", p.IdleTimeout)
	}
	return pass("idle timeout: " + p.IdleTimeout + " minutes")
}

func (t *target) prefsMax() Check {
	p := t.f.Prefs
	if p == nil || p.Err != nil {
		return skip("the preferences could not be read")
	}
	if p.MaxDuration == "" {
		return pass("no maximum session duration")
	}
	if n, ok := minutes(p.MaxDuration); !ok || n < 1 || n > 1440 {
		return failf(prefsFix(p.Document)+" with max_session_duration between 1 and 1440", "maxSessionDuration %q is not 1–1440 minutes", p.MaxDuration)
	}
	return pass("maximum session duration: " + p.MaxDuration + " minutes")
}

func (t *target) loggingS3() Check {
	b := t.f.Bucket
	switch {
	case b == nil:
		return skip("S3 session logging is off")
	case b.Err != nil:
		return skip("cannot read bucket %s: %s", b.Name, shortErr(b.Err))
	case !b.Exists:
		return failf(fmt.Sprintf("aws s3api create-bucket --bucket %s (Terraform: terraform/modules/session-preferences create_s3_bucket = true)", b.Name),
			"logging bucket %s does not exist: sessions fail to start", b.Name)
	}
	return pass("logging bucket " + b.Name + " exists")
}

func (t *target) loggingS3Encryption() Check {
	b, p := t.f.Bucket, t.prefs()
	switch {
	case b == nil || !p.S3Encryption:
		return skip("S3 log encryption is not required")
	case b.Err != nil || !b.Exists:
		return skip("the bucket is missing or unreadable (see logging.s3-bucket)")
	case b.EncryptionErr != nil:
		return skip("cannot read the encryption of %s: %s", b.Name, shortErr(b.EncryptionErr))
	case !b.Encrypted:
		return failf(fmt.Sprintf(`aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}'`, b.Name),
			"s3EncryptionEnabled is true but bucket %s has no default encryption: sessions fail to start", b.Name)
	}
	return pass("bucket " + b.Name + " is encrypted by default")
}

func (t *target) loggingCW() Check {
	g := t.f.LogGroup
	switch {
	case g == nil:
		return skip("CloudWatch session logging is off")
	case g.Err != nil:
		return skip("cannot read log group %s: %s", g.Name, shortErr(g.Err))
	case !g.Exists:
		return failf(fmt.Sprintf("aws logs create-log-group --log-group-name %s (Terraform: terraform/modules/session-preferences create_cloudwatch_log_group = true)", g.Name),
			"log group %s does not exist: sessions fail to start", g.Name)
	}
	return pass("log group " + g.Name + " exists")
}

func (t *target) loggingCWEncryption() Check {
	g, p := t.f.LogGroup, t.prefs()
	switch {
	case g == nil || !p.CWEncryption:
		return skip("CloudWatch log encryption is not required")
	case g.Err != nil || !g.Exists:
		return skip("the log group is missing or unreadable (see logging.cw-log-group)")
	case g.KMSKeyID == "":
		return failf(fmt.Sprintf("aws logs associate-kms-key --log-group-name %s --kms-key-id <key-arn> (Terraform: terraform/modules/session-preferences kms_key_arn)", g.Name),
			"cloudWatchEncryptionEnabled is true but log group %s is not encrypted: sessions fail to start", g.Name)
	}
	return pass("log group "+g.Name+" is encrypted", "kmsKeyId="+g.KMSKeyID)
}

func (t *target) loggingRoleAccess() Check {
	p := t.prefs()
	if p.S3Bucket == "" && p.LogGroup == "" && p.KMSKeyID == "" {
		return skip("session logging and KMS encryption are off")
	}
	if t.role == nil {
		return skip("no role to check")
	}
	if t.role.Err != nil {
		return skip("cannot read the policies of role %s: %s", t.role.Name, shortErr(t.role.Err))
	}
	f := t.f
	var reqs [][2]string
	var vars []string
	if p.S3Bucket != "" {
		obj := fmt.Sprintf("arn:%s:s3:::%s/%s*", f.Partition, p.S3Bucket, p.S3Prefix)
		reqs = append(reqs, [2]string{"s3:PutObject", strings.TrimSuffix(obj, "*") + "session.log"},
			[2]string{"s3:GetEncryptionConfiguration", fmt.Sprintf("arn:%s:s3:::%s", f.Partition, p.S3Bucket)})
		vars = append(vars, fmt.Sprintf("logging_s3_bucket_name = %q", p.S3Bucket))
	}
	if p.LogGroup != "" {
		lg := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", f.Partition, f.Region, f.Account, p.LogGroup)
		reqs = append(reqs, [2]string{"logs:CreateLogStream", lg + ":*"}, [2]string{"logs:PutLogEvents", lg + ":log-stream:x"},
			// DescribeLogGroups is authorized on the account's log groups as a
			// whole (log-group:*), not on one group and not on "*".
			[2]string{"logs:DescribeLogGroups", fmt.Sprintf("arn:%s:logs:%s:%s:log-group:*", f.Partition, f.Region, f.Account)},
			[2]string{"logs:DescribeLogStreams", lg + ":*"})
		vars = append(vars, fmt.Sprintf("logging_cloudwatch_log_group_name = %q", p.LogGroup))
	}
	if p.KMSKeyID != "" {
		key := p.KMSKeyID
		if t.f.Key != nil && t.f.Key.ARN != "" {
			key = t.f.Key.ARN
		}
		reqs = append(reqs, [2]string{"kms:Decrypt", key})
		vars = append(vars, fmt.Sprintf("logging_kms_key_arns = [%q]", key))
	}
	var bad, cond []string
	for _, rq := range reqs {
		switch r := policy.Evaluate(t.role.Policies, policy.Request{Action: rq[0], Resource: rq[1]}); r.Decision {
		case policy.Allowed:
		case policy.Conditional:
			cond = append(cond, rq[0])
		default:
			bad = append(bad, rq[0]+" on "+rq[1])
		}
	}
	fix := "Terraform: terraform/modules/instance-role with " + strings.Join(vars, ", ")
	if len(bad) > 0 {
		return failf(fix, "role %s may not %s", t.role.Name, strings.Join(bad, ", "))
	}
	if len(cond) > 0 {
		return warnf(fix, "role %s may %s only under conditions", t.role.Name, strings.Join(cond, ", "))
	}
	return pass(fmt.Sprintf("role %s may write the session logs and use the key", t.role.Name))
}

func (t *target) kmsEnabled() Check {
	k := t.f.Key
	switch {
	case k == nil:
		return skip("KMS encryption is not configured")
	case k.Err != nil:
		return skip("cannot describe key %s: %s", k.ID, shortErr(k.Err))
	case !k.Exists:
		return failf(prefsFix(t.prefs().Document)+" with an existing kms_key_arn", "KMS key %s does not exist", k.ID)
	case k.State == "PendingDeletion":
		return failf(fmt.Sprintf("aws kms cancel-key-deletion --key-id %s && aws kms enable-key --key-id %s", k.ID, k.ID), "KMS key %s is pending deletion", k.ID)
	case !k.Enabled:
		return failf(fmt.Sprintf("aws kms enable-key --key-id %s", k.ID), "KMS key %s is %s: encrypted sessions fail", k.ID, k.State).with("KeyState=" + k.State)
	}
	return pass("KMS key "+k.ID+" is enabled", "KeyState="+k.State)
}

func (t *target) kmsPolicy() Check {
	k := t.f.Key
	switch {
	case k == nil:
		return skip("KMS encryption is not configured")
	case k.Err != nil || !k.Exists:
		return skip("the key is missing or unreadable (see kms.key-enabled)")
	case k.Policy == nil:
		return skip("cannot read the key policy: %s", errText(k.PolicyErr))
	}
	var bad []string
	var vars []string
	if t.role != nil {
		if d := policy.Evaluate([]policy.Document{*k.Policy}, policy.Request{Action: "kms:Decrypt", Principal: "AWS:" + t.role.ARN}).Decision; d == policy.ImplicitDeny || d == policy.ExplicitDeny {
			bad = append(bad, "role "+t.role.Name+" (kms:Decrypt)")
			vars = append(vars, fmt.Sprintf("kms_key_instance_role_arns = [%q]", t.role.ARN))
		}
	}
	if c := t.f.Caller; c != nil && c.ARN != "" {
		p := principalARN(c.ARN)
		if d := policy.Evaluate([]policy.Document{*k.Policy}, policy.Request{Action: "kms:GenerateDataKey", Principal: "AWS:" + p}).Decision; d == policy.ImplicitDeny || d == policy.ExplicitDeny {
			bad = append(bad, "you, "+p+" (kms:GenerateDataKey)")
			vars = append(vars, fmt.Sprintf("kms_key_operator_arns = [%q]", p))
		}
	}
	if len(bad) > 0 {
		return failf("Terraform: terraform/modules/session-preferences with "+strings.Join(vars, ", "), "the policy of key %s does not let %s use it", k.ID, strings.Join(bad, " or "))
	}
	return pass("the key policy lets the instance role and you use the key (directly or through IAM policies)")
}

// --- the caller ---

func (t *target) callerIdentity() Check {
	c := t.f.Caller
	switch {
	case c == nil:
		return skip("the caller was not identified")
	case c.Err != nil:
		return failf("check your credentials: `aws sts get-caller-identity`", "cannot identify the caller: %s", shortErr(c.Err))
	}
	return pass("you are "+c.ARN, "Account="+c.Account)
}

func (t *target) callerStartSession() Check {
	c := t.f.Caller
	if c == nil || c.Err != nil {
		return skip("the caller was not identified")
	}
	if c.Method == "" {
		return skip("neither iam:SimulatePrincipalPolicy nor the caller's own policies could be used: %s", errText(c.EvalErr))
	}
	reqs := [][2]string{{"ssm:StartSession", instanceARN(t.f, t.inst.ID)}}
	reqs = append(reqs, callerRequests(t.f)...)
	var bad, cond []string
	for _, rq := range reqs {
		var d policy.Decision
		if c.Method == "iam:SimulatePrincipalPolicy" {
			var ok bool
			d, ok = c.Simulated[rq[0]+" "+rq[1]]
			if !ok {
				d, ok = c.Simulated[rq[0]+" "+instanceARN(t.f, "*")]
			}
			if !ok {
				cond = append(cond, rq[0]+" (not simulated)")
				continue
			}
		} else {
			d = policy.Evaluate(c.Policies, policy.Request{Action: rq[0], Resource: rq[1]}).Decision
		}
		switch d {
		case policy.Allowed:
		case policy.Conditional:
			cond = append(cond, rq[0])
		default:
			bad = append(bad, fmt.Sprintf("%s on %s (%s)", rq[0], rq[1], d))
		}
	}
	ev := []string{"method: " + c.Method, "not evaluated: permissions boundaries, SCPs, session policies"}
	fix := "Terraform: terraform/modules/user-access (role_names or group_names) grants sessions on tagged instances"
	if len(bad) > 0 {
		return failf(fix, "you may not %s", strings.Join(bad, ", ")).with(ev...)
	}
	if len(cond) > 0 {
		return warnf(fix, "you may %s only under conditions", strings.Join(cond, ", ")).with(ev...)
	}
	return pass("you may start and end sessions on this instance", ev...)
}
