package doctor

import (
	"fmt"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

// MinAgentVersion is the oldest agent Session Manager supports.
var MinAgentVersion = version.Sessions.MinAgent

func (t *target) instanceRunning() Check {
	if t.hybrid {
		return skip("hybrid managed node: not an EC2 instance")
	}
	if t.inst.State != "running" {
		return failf("", "the instance is %s", t.inst.State).with("State="+t.inst.State).
			run("", cmd("aws", "ec2", "start-instances", "--instance-ids", t.inst.ID))
	}
	return pass("the instance is running", "State=running", "AvailabilityZone="+t.inst.AvailabilityZone)
}

const agentFix = "on the instance run `ssmkit doctor --local`, then `sudo systemctl restart amazon-ssm-agent` (snap: `sudo snap restart amazon-ssm-agent`)"

func (t *target) agentOnline() Check {
	if t.f.ManagedErr != nil {
		return skip("cannot list managed nodes: %s", shortErr(t.f.ManagedErr))
	}
	m := t.managed
	if m == nil && t.hybrid {
		return failf(hybridRegisterFix(t.f.Region),
			"%s is not a managed node in %s: it was deregistered, or it is in another region or account", t.inst.ID, t.f.Region)
	}
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

// hybridRegisterFix is how a machine becomes a hybrid managed node again:
// a new activation, then registration on the machine. Not a command the
// doctor can run: the second step needs the first's output, on the machine.
func hybridRegisterFix(region string) string {
	return "create an activation with a role that trusts ssm.amazonaws.com and has AmazonSSMManagedInstanceCore " +
		"(`aws ssm create-activation --iam-role ROLE --registration-limit 1`), then on the machine " +
		"`sudo amazon-ssm-agent -register -code CODE -id ID -region " + region + "` and restart the agent; check --region and --profile first"
}

// UpdateAgentDocument is the AWS-owned Run Command document that updates
// the SSM Agent (not a session document, so not in package ssmdoc).
const UpdateAgentDocument = "AWS-UpdateSSMAgent"

// updateAgent is the command that updates the agent through Run Command.
func updateAgent(id string) string {
	return cmd("aws", "ssm", "send-command", "--document-name", UpdateAgentDocument, "--instance-ids", id)
}

func (t *target) agentVersion() Check {
	if t.managed == nil || t.managed.AgentVersion == "" {
		return skip("agent version unknown: not a managed node")
	}
	v := t.managed.AgentVersion
	if !version.Sessions.SupportedBy(v) {
		return failf("", "SSM Agent %s is older than %s, the oldest Session Manager supports", v, MinAgentVersion).with("AgentVersion="+v).
			run("", updateAgent(t.inst.ID))
	}
	return pass("SSM Agent "+v, "AgentVersion="+v)
}

// gate checks an agent feature (see version.Features); used says whether
// this configuration needs the feature (a fail when too old) or merely may
// use it (a warn); why, when set, is the reason to skip an unused one.
func (t *target) gate(f version.Feature, used bool, why string) Check {
	if t.managed == nil || t.managed.AgentVersion == "" {
		return skip("agent version unknown: not a managed node")
	}
	v := t.managed.AgentVersion
	if !used && why != "" {
		return skip("%s", why)
	}
	if f.SupportedBy(v) {
		return pass(fmt.Sprintf("%s is supported (agent %s ≥ %s)", f.Name, v, f.MinAgent))
	}
	c := warnf("", "%s needs agent %s, this one is %s", f.Name, f.MinAgent, v).run("", updateAgent(t.inst.ID))
	if used {
		c.Status = Fail
		c.Summary += "; this configuration uses it"
	}
	return c.with("AgentVersion=" + v)
}

func (t *target) featureKMS() Check {
	p := t.prefs()
	return t.gate(version.KMSEncryption, p.KMSKeyID != "", "KMS encryption is not configured")
}

func (t *target) featureShellProfile() Check {
	p := t.prefs()
	return t.gate(version.ShellProfile, p.ShellProfileLinux != "" || p.ShellProfileWindows != "", "no shell profile is configured")
}

func (t *target) featurePortForwarding() Check {
	return t.gate(version.PortForwarding, false, "")
}

func (t *target) featureMultiplexing() Check {
	c := t.gate(version.Multiplexing, false, "")
	if c.Status == Warn {
		c.Summary += ": port forwarding and SSH carry one connection at a time, so clients that open several stall"
	}
	return c
}

func (t *target) featureCWStreaming() Check {
	p := t.prefs()
	return t.gate(version.CloudWatchStreaming, p.LogGroup != "" && p.CWStreaming, "CloudWatch streaming is not configured")
}

func (t *target) featureRemoteHost() Check {
	return t.gate(version.RemoteHost, false, "")
}

func (t *target) featureDHM() Check {
	why := "the instance has an instance profile"
	if t.hybrid {
		why = "hybrid managed node: default host management is for EC2 instances (hybrid nodes use their activation's role)"
	}
	return t.gate(version.DefaultHostManagement, t.roleVia == "dhm", why)
}
