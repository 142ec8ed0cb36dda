package session

import (
	"strconv"
)

// Session documents owned by AWS (SESSION-PROTOCOL.md §8.1). Their
// parameters are what the request builders below fill in.
const (
	// DocumentShell is the default shell document (Standard_Stream).
	DocumentShell = "SSM-SessionManagerRunShell"
	// DocumentNonInteractiveCommand runs one command without a pty. Its
	// only parameter is "command". Separate stdout/stderr and the exit
	// code need the document property separateOutputStream, which the
	// AWS-owned document does not set: use a copy that sets it (for
	// example the sandbox's) to get them.
	DocumentNonInteractiveCommand = "AWS-StartNonInteractiveCommand"
	// DocumentInteractiveCommand runs one command on a pty; parameter
	// "command".
	DocumentInteractiveCommand = "AWS-StartInteractiveCommand"
	// DocumentPortForwarding forwards to a port on the target; parameters
	// "portNumber" and "localPortNumber".
	DocumentPortForwarding = "AWS-StartPortForwardingSession"
	// DocumentPortForwardingToRemoteHost forwards to host:port reachable
	// from the target; parameters "host", "portNumber", "localPortNumber".
	DocumentPortForwardingToRemoteHost = "AWS-StartPortForwardingSessionToRemoteHost"
	// DocumentSSH connects to the target's sshd; parameter "portNumber".
	DocumentSSH = "AWS-StartSSHSession"
)

// CommandRequest returns the request that runs command on target: a
// NonInteractiveCommands session, or InteractiveCommands (on a pty) when
// tty is set. document overrides the document name when not empty.
func CommandRequest(target, command string, tty bool, document string) StartRequest {
	if document == "" {
		document = DocumentNonInteractiveCommand
		if tty {
			document = DocumentInteractiveCommand
		}
	}
	params := map[string][]string{"command": {command}}
	if document == DocumentNonInteractiveCommand {
		// The AWS-owned document streams stdout and stderr apart and
		// sends the exit code only when asked to.
		params["separateOutputStream"] = []string{"true"}
	}
	return StartRequest{
		Target:       target,
		DocumentName: document,
		Parameters:   params,
	}
}

// PortForwardRequest returns the request that forwards to remotePort on
// target, or on host as seen from target when host is not empty. The
// local port is chosen by the client (Forward), so localPortNumber is only
// informational.
func PortForwardRequest(target string, remotePort, localPort int, host string) StartRequest {
	params := map[string][]string{
		"portNumber":      {strconv.Itoa(remotePort)},
		"localPortNumber": {strconv.Itoa(localPort)},
	}
	doc := DocumentPortForwarding
	if host != "" {
		doc = DocumentPortForwardingToRemoteHost
		params["host"] = []string{host}
	}
	return StartRequest{Target: target, DocumentName: doc, Parameters: params}
}

// SSHRequest returns the request for an SSH stream to port on target.
func SSHRequest(target string, port int) StartRequest {
	return StartRequest{
		Target:       target,
		DocumentName: DocumentSSH,
		Parameters:   map[string][]string{"portNumber": {strconv.Itoa(port)}},
	}
}
