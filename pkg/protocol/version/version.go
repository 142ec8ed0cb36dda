// Package version compares SSM Agent and session client versions the way
// each upstream end does (SESSION-PROTOCOL.md §8.7). The two ends disagree
// on edge cases, and each side's feature gates must be computed with the
// other side's rules to predict what it will do.
package version

import (
	"strconv"
	"strings"
)

// ClientGreater reports whether a > b by the client's rules: both must have
// the same number of all-numeric parts; otherwise the feature is treated as
// unsupported (false).
func ClientGreater(a, b string) bool {
	c, ok := clientCompare(a, b)
	return ok && c > 0
}

func clientCompare(a, b string) (int, bool) {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != len(pb) {
		return 0, false
	}
	for i := range pa {
		x, err1 := strconv.ParseUint(pa[i], 10, 64)
		y, err2 := strconv.ParseUint(pb[i], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		if x != y {
			if x > y {
				return 1, true
			}
			return -1, true
		}
	}
	return 0, true
}

// AgentCompare compares a and b by the agent's rules: part by part,
// numerically when both parts are numbers and as text otherwise; with an
// equal prefix the version with fewer parts is lower; an empty version is
// lower than everything. It returns -1, 0 or 1.
func AgentCompare(a, b string) int {
	if a == b {
		return 0
	}
	if a == "" {
		return -1
	}
	if b == "" {
		return 1
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, err1 := strconv.ParseUint(pa[i], 10, 64)
		y, err2 := strconv.ParseUint(pb[i], 10, 64)
		if err1 == nil && err2 == nil {
			if x != y {
				if x > y {
					return 1
				}
				return -1
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(pa) < len(pb):
		return -1
	case len(pa) > len(pb):
		return 1
	}
	return 0
}

// Gates from §8.7.
const (
	// TerminateSessionFlagAgent: client sends the TerminateSession flag in
	// basic mode when the agent is above this version.
	TerminateSessionFlagAgent = "2.3.722.0"
	// MuxAgent: client uses smux when the agent is above this version.
	MuxAgent = "3.0.196.0"
	// MuxKeepAliveOffAgent: client turns smux keepalive off above this.
	MuxKeepAliveOffAgent = "3.1.1511.0"
	// MuxClient: agent runs the smux server when the client is at least this.
	MuxClient = "1.1.70"
	// MuxKeepAliveOffClient: agent turns smux keepalive off above this.
	MuxKeepAliveOffClient = "1.2.331.0"
)

// ClientUsesMux reports whether a client picks smux for LocalPortForwarding
// against agentVersion.
func ClientUsesMux(agentVersion string) bool { return ClientGreater(agentVersion, MuxAgent) }

// ClientMuxKeepAliveOff reports whether a client disables smux keepalive.
func ClientMuxKeepAliveOff(agentVersion string) bool {
	return ClientGreater(agentVersion, MuxKeepAliveOffAgent)
}

// ClientSendsTerminateFlag reports whether a client in basic mode ends the
// session with the TerminateSession flag rather than the API.
func ClientSendsTerminateFlag(agentVersion string) bool {
	return ClientGreater(agentVersion, TerminateSessionFlagAgent)
}

// AgentUsesMux reports whether an agent runs the smux server for clientVersion.
func AgentUsesMux(clientVersion string) bool { return AgentCompare(clientVersion, MuxClient) >= 0 }

// AgentMuxKeepAliveOff reports whether an agent disables smux keepalive.
func AgentMuxKeepAliveOff(clientVersion string) bool {
	return AgentCompare(clientVersion, MuxKeepAliveOffClient) > 0
}

// Valid reports whether v is a 4-part numeric version such as 3.3.1142.0.
func Valid(v string) bool {
	p := strings.Split(v, ".")
	if len(p) != 4 {
		return false
	}
	for _, s := range p {
		if _, err := strconv.ParseUint(s, 10, 32); err != nil {
			return false
		}
	}
	return true
}
