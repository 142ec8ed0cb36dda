package doctor

import (
	"fmt"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

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
