// Package ssmdoc is the one home of the Session Manager document names and
// session types (SESSION-PROTOCOL.md §5.7, §8.1): the client, the sandbox,
// the preferences model and the doctor all name documents through it.
//
// It holds constants and small pure helpers only, so that any package can
// import it without a cycle.
package ssmdoc

import (
	"fmt"
	"strings"
)

// Session documents. Shell is created in each account by Session Manager;
// the others are owned by AWS (their names start with "AWS-").
const (
	// Shell is the default shell document (Standard_Stream), used when
	// StartSession names no document. It also holds the account's Session
	// Manager preferences (logging, KMS, idle timeout, Run As…).
	Shell = "SSM-SessionManagerRunShell"
	// NonInteractiveCommand runs one command without a pty; parameters
	// "command", and "separateOutputStream" with the two separator
	// prefixes for separate stdout/stderr and the exit code.
	NonInteractiveCommand = "AWS-StartNonInteractiveCommand"
	// InteractiveCommand runs one command on a pty; parameter "command".
	InteractiveCommand = "AWS-StartInteractiveCommand"
	// PortForwarding forwards to a port on the target; parameters
	// "portNumber" and "localPortNumber".
	PortForwarding = "AWS-StartPortForwardingSession"
	// PortForwardingToRemoteHost forwards to host:port reachable from the
	// target; parameters "host", "portNumber", "localPortNumber".
	PortForwardingToRemoteHost = "AWS-StartPortForwardingSessionToRemoteHost"
	// SSH connects to the target's sshd; parameter "portNumber".
	SSH = "AWS-StartSSHSession"
)

// Session types: a Session document's "sessionType", which selects the
// agent plugin that serves the session (§5.7).
const (
	// SessionTypeStandardStream is an interactive shell on a pty.
	SessionTypeStandardStream = "Standard_Stream"
	// SessionTypeInteractiveCommands runs the document's commands on a pty.
	SessionTypeInteractiveCommands = "InteractiveCommands"
	// SessionTypeNonInteractiveCommands runs the document's commands
	// without a pty.
	SessionTypeNonInteractiveCommands = "NonInteractiveCommands"
	// SessionTypePort forwards a TCP port (also SSH).
	SessionTypePort = "Port"
)

// awsOwnedPrefix starts the name of every document AWS owns.
const awsOwnedPrefix = "AWS-"

// sessionTypes maps the documents above to their session type.
var sessionTypes = map[string]string{
	Shell:                      SessionTypeStandardStream,
	NonInteractiveCommand:      SessionTypeNonInteractiveCommands,
	InteractiveCommand:         SessionTypeInteractiveCommands,
	PortForwarding:             SessionTypePort,
	PortForwardingToRemoteHost: SessionTypePort,
	SSH:                        SessionTypePort,
}

// SessionTypeOf returns the session type of one of the documents above,
// or false for any other name (whose type only its content tells).
func SessionTypeOf(document string) (string, bool) {
	t, ok := sessionTypes[document]
	return t, ok
}

// ValidSessionType reports whether t is one of the four session types.
func ValidSessionType(t string) bool {
	switch t {
	case SessionTypeStandardStream, SessionTypeInteractiveCommands, SessionTypeNonInteractiveCommands, SessionTypePort:
		return true
	}
	return false
}

// IsAWSOwned reports whether document is owned by AWS rather than by an
// account (AWS-StartSSHSession, but not SSM-SessionManagerRunShell).
func IsAWSOwned(document string) bool {
	return strings.HasPrefix(document, awsOwnedPrefix)
}

// ARN returns the document's ARN as IAM policies name it: AWS-owned
// documents have no account (arn:aws:ssm:us-east-1::document/AWS-StartSSHSession),
// an account's documents have its ID.
func ARN(partition, region, account, document string) string {
	if IsAWSOwned(document) {
		account = ""
	}
	return fmt.Sprintf("arn:%s:ssm:%s:%s:document/%s", partition, region, account, document)
}
