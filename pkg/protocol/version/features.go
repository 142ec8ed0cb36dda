package version

// Feature is an SSM Agent capability that users see, with the first agent
// release that has it. The table below is the one place ssmkit keeps
// these: the doctor's feature checks, `ls` flags and the session client
// read it. Versions come from the agent's release notes (SESSION-PROTOCOL.md
// §8.7, feature history) and the Session Manager prerequisites page; they
// are release-order gates, so they compare with AgentCompare.
//
// They are not the wire-level constants above (TerminateSessionFlagAgent,
// MuxAgent, …), which reproduce exactly what the official client and agent
// compare, with their own rules, to choose a protocol mode.
type Feature struct {
	// ID is the feature's stable short name ("port-forwarding"); the
	// doctor's check IDs are agent.feature.<ID>.
	ID string
	// Name is what users read ("port forwarding").
	Name string
	// MinAgent is the first agent version with the feature.
	MinAgent string
}

// SupportedBy reports whether an agent of version v has the feature. An
// unknown (empty) version has none.
func (f Feature) SupportedBy(v string) bool {
	return v != "" && AgentCompare(v, f.MinAgent) >= 0
}

// The agent features ssmkit gates on.
var (
	// Sessions: the oldest agent Session Manager supports at all.
	Sessions = Feature{ID: "sessions", Name: "Session Manager sessions", MinAgent: "2.3.68.0"}
	// KMSEncryption: session data encrypted with a KMS key.
	KMSEncryption = Feature{ID: "kms-encryption", Name: "KMS encryption", MinAgent: "2.3.539.0"}
	// InteractiveCommands: AWS-StartInteractiveCommand.
	InteractiveCommands = Feature{ID: "interactive-commands", Name: "interactive commands", MinAgent: "2.3.668.0"}
	// PortForwarding: the Port plugin (AWS-StartPortForwardingSession,
	// AWS-StartSSHSession), one TCP connection at a time.
	PortForwarding = Feature{ID: "port-forwarding", Name: "port forwarding", MinAgent: "2.3.672.0"}
	// Multiplexing: many TCP connections over one port forwarding session
	// (smux). AWS documents it as the minimum for port forwarding and SSH
	// today; older agents forward one connection at a time, which stalls
	// clients that open several (browsers, database pools).
	Multiplexing = Feature{ID: "multiplexing", Name: "port forwarding of many connections per session", MinAgent: "3.0.222.0"}
	// ShellProfile: shellProfile commands at the start of shell sessions.
	ShellProfile = Feature{ID: "shell-profile", Name: "shell profiles", MinAgent: "3.0.161.0"}
	// CloudWatchStreaming: session output streamed to CloudWatch Logs.
	CloudWatchStreaming = Feature{ID: "cloudwatch-streaming", Name: "CloudWatch streaming", MinAgent: "3.0.284.0"}
	// NonInteractiveCommands: AWS-StartNonInteractiveCommand.
	NonInteractiveCommands = Feature{ID: "noninteractive-commands", Name: "non-interactive commands", MinAgent: "3.0.1124.0"}
	// RemoteHost: AWS-StartPortForwardingSessionToRemoteHost.
	RemoteHost = Feature{ID: "remote-host", Name: "port forwarding to remote hosts", MinAgent: "3.1.1188.0"}
	// SeparateStreams: stdout and stderr apart, with the exit code, for
	// non-interactive commands.
	SeparateStreams = Feature{ID: "separate-streams", Name: "separate stdout and stderr", MinAgent: "3.1.1511.0"}
	// DefaultHostManagement: the agent registers with the account's
	// default host management role instead of an instance profile.
	DefaultHostManagement = Feature{ID: "default-host-management", Name: "default host management", MinAgent: "3.2.582.0"}
)

// Features lists every Feature, oldest first.
var Features = []Feature{
	Sessions, KMSEncryption, InteractiveCommands, PortForwarding, ShellProfile, Multiplexing,
	CloudWatchStreaming, NonInteractiveCommands, RemoteHost, SeparateStreams, DefaultHostManagement,
}
