package session

import (
	"strconv"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// ParamSeparateOutputStream is the AWS-StartNonInteractiveCommand
// parameter that asks for stdout and stderr apart and the exit code.
const ParamSeparateOutputStream = "separateOutputStream"

// CommandRequest returns the request that runs command on target: a
// NonInteractiveCommands session, or InteractiveCommands (on a pty) when
// tty is set. document overrides the document name when not empty.
func CommandRequest(target, command string, tty bool, document string) StartRequest {
	if document == "" {
		document = ssmdoc.NonInteractiveCommand
		if tty {
			document = ssmdoc.InteractiveCommand
		}
	}
	params := map[string][]string{"command": {command}}
	if document == ssmdoc.NonInteractiveCommand {
		// The AWS-owned document streams stdout and stderr apart and
		// sends the exit code only when asked to.
		params[ParamSeparateOutputStream] = []string{"true"}
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
	doc := ssmdoc.PortForwarding
	if host != "" {
		doc = ssmdoc.PortForwardingToRemoteHost
		params["host"] = []string{host}
	}
	return StartRequest{Target: target, DocumentName: doc, Parameters: params}
}

// SSHRequest returns the request for an SSH stream to port on target.
func SSHRequest(target string, port int) StartRequest {
	return StartRequest{
		Target:       target,
		DocumentName: ssmdoc.SSH,
		Parameters:   map[string][]string{"portNumber": {strconv.Itoa(port)}},
	}
}
