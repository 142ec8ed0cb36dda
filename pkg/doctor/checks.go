package doctor

import (
	"fmt"
	"strings"
	"time"
)

// checks is every outside-in check in the order reports show it: its
// stable ID (never renamed or reused) and the function that decides it.
var checks = []struct {
	id  string
	run func(*target) Check
}{
	{"instance.running", (*target).instanceRunning},
	{"agent.online", (*target).agentOnline},
	{"agent.version", (*target).agentVersion},
	{"agent.feature.kms-encryption", (*target).featureKMS},
	{"agent.feature.shell-profile", (*target).featureShellProfile},
	{"agent.feature.port-forwarding", (*target).featurePortForwarding},
	{"agent.feature.multiplexing", (*target).featureMultiplexing},
	{"agent.feature.cloudwatch-streaming", (*target).featureCWStreaming},
	{"agent.feature.remote-host", (*target).featureRemoteHost},
	{"agent.feature.default-host-management", (*target).featureDHM},
	{"identity.profile", (*target).identityProfile},
	{"identity.role-trust", (*target).identityTrust},
	{"identity.core-policy", (*target).identityCorePolicy},
	{"network.route", (*target).networkRoute},
	{"network.vpc-dns", (*target).networkVPCDNS},
	{"network.endpoints", (*target).networkEndpoints},
	{"network.endpoints.private-dns", (*target).networkPrivateDNS},
	{"network.endpoint-sg-443", (*target).networkEndpointSG},
	{"network.endpoint-policy", (*target).networkEndpointPolicy},
	{"network.instance-sg-egress-443", (*target).networkInstanceSG},
	{"network.nacl", (*target).networkNACL},
	{"network.logging-path", (*target).networkLoggingPath},
	{"prefs.document", (*target).prefsDocument},
	{"prefs.idle-timeout", (*target).prefsIdle},
	{"prefs.max-duration", (*target).prefsMax},
	{"logging.s3-bucket", (*target).loggingS3},
	{"logging.s3-encryption", (*target).loggingS3Encryption},
	{"logging.cw-log-group", (*target).loggingCW},
	{"logging.cw-encryption", (*target).loggingCWEncryption},
	{"logging.role-access", (*target).loggingRoleAccess},
	{"kms.key-enabled", (*target).kmsEnabled},
	{"kms.key-policy", (*target).kmsPolicy},
	{"caller.identity", (*target).callerIdentity},
	{"caller.start-session", (*target).callerStartSession},
}

// CheckIDs lists every outside-in check ID in the order reports show them.
// Every InstanceReport has exactly these checks, so consumers of --json can
// rely on each ID being present.
var CheckIDs = func() []string {
	ids := make([]string, len(checks))
	for i, c := range checks {
		ids[i] = c.id
	}
	return ids
}()

// Run checks every target in f.
func Run(f *Facts, now time.Time) Report {
	var reports []InstanceReport
	for id := range f.Instances {
		reports = append(reports, CheckInstance(f, id, now))
	}
	for target, why := range f.Missing {
		reports = append(reports, missingReport(f, target, why))
	}
	return NewReport(reports)
}

func missingReport(f *Facts, target, why string) InstanceReport {
	r := InstanceReport{ID: target}
	fix := "check --region and --profile: the instance may be in another region or account; `ssmkit ls` lists the nodes of this one"
	switch {
	case strings.HasPrefix(target, "mi-"):
		fix = hybridRegisterFix(f.Region)
	case !strings.HasPrefix(target, "i-"):
		fix = "check the name and --region; `ssmkit ls` lists the managed nodes with their names"
	}
	for _, id := range CheckIDs {
		c := Check{ID: id, Status: Skip, Summary: "the target was not found"}
		if id == "instance.running" {
			c = Check{ID: id, Status: Fail, Summary: why, Fix: fix}
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

	role    *Role
	roleVia string // "profile" or "dhm"
	path    netPath
	// accessCache holds access(svc) answers.
	accessCache map[string]access
}

// CheckInstance runs every check for one instance of f.
func CheckInstance(f *Facts, id string, now time.Time) InstanceReport {
	t := &target{f: f, now: now, inst: f.Instances[id], managed: f.Managed[id], accessCache: map[string]access{}}
	t.hybrid = t.inst.State == "hybrid"
	t.vpc = f.VPCs[t.inst.VpcID]
	if t.vpc != nil {
		t.subnet = t.vpc.Subnets[t.inst.SubnetID]
		t.path = t.findPath()
	}
	t.resolveRole()
	r := InstanceReport{ID: id, Name: t.inst.Name}
	for _, c := range checks {
		res := c.run(t)
		res.ID = c.id
		r.Checks = append(r.Checks, res)
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

func orUnknown(s string) string {
	if s == "" {
		return "<route-table-id>"
	}
	return s
}

func boolText(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
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
