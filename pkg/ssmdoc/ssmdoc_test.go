package ssmdoc_test

import (
	"encoding/json"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/sandbox/ssmapi"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

var documents = []string{ssmdoc.Shell, ssmdoc.NonInteractiveCommand, ssmdoc.InteractiveCommand,
	ssmdoc.PortForwarding, ssmdoc.PortForwardingToRemoteHost, ssmdoc.SSH}

func TestSessionTypeOf(t *testing.T) {
	want := map[string]string{
		"SSM-SessionManagerRunShell":                 "Standard_Stream",
		"AWS-StartNonInteractiveCommand":             "NonInteractiveCommands",
		"AWS-StartInteractiveCommand":                "InteractiveCommands",
		"AWS-StartPortForwardingSession":             "Port",
		"AWS-StartPortForwardingSessionToRemoteHost": "Port",
		"AWS-StartSSHSession":                        "Port",
	}
	for _, d := range documents {
		got, ok := ssmdoc.SessionTypeOf(d)
		if !ok || got != want[d] || !ssmdoc.ValidSessionType(got) {
			t.Errorf("SessionTypeOf(%s) = %q, %v; want %q", d, got, ok, want[d])
		}
	}
	if got, ok := ssmdoc.SessionTypeOf("MyDocument"); ok || got != "" {
		t.Errorf("SessionTypeOf(MyDocument) = %q, %v", got, ok)
	}
	for _, bad := range []string{"", "port", "Standard-Stream", "Shell"} {
		if ssmdoc.ValidSessionType(bad) {
			t.Errorf("ValidSessionType(%q) = true", bad)
		}
	}
}

func TestARN(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{ssmdoc.Shell, "arn:aws:ssm:eu-west-1:111122223333:document/SSM-SessionManagerRunShell"},
		{ssmdoc.SSH, "arn:aws:ssm:eu-west-1::document/AWS-StartSSHSession"},
		{"Team-Shell", "arn:aws:ssm:eu-west-1:111122223333:document/Team-Shell"},
	} {
		if got := ssmdoc.ARN("aws", "eu-west-1", "111122223333", c.doc); got != c.want {
			t.Errorf("ARN(%s) = %s, want %s", c.doc, got, c.want)
		}
	}
	if got := ssmdoc.ARN("aws-cn", "cn-north-1", "111122223333", ssmdoc.PortForwarding); got != "arn:aws-cn:ssm:cn-north-1::document/AWS-StartPortForwardingSession" {
		t.Errorf("ARN in aws-cn = %s", got)
	}
}

// TestSandboxServesEveryAWSDocument: the sandbox's copies of the AWS-owned
// documents are exactly the AWS-owned names here, each with the session
// type this package gives it.
func TestSandboxServesEveryAWSDocument(t *testing.T) {
	seen := 0
	for _, d := range documents {
		if !ssmdoc.IsAWSOwned(d) {
			continue
		}
		seen++
		content, ok := ssmapi.AWSSessionDocuments[d]
		if !ok {
			t.Errorf("the sandbox does not serve %s", d)
			continue
		}
		var doc struct {
			SessionType string `json:"sessionType"`
		}
		if err := json.Unmarshal([]byte(content), &doc); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if want, _ := ssmdoc.SessionTypeOf(d); doc.SessionType != want {
			t.Errorf("sandbox %s has sessionType %q, want %q", d, doc.SessionType, want)
		}
	}
	if seen != len(ssmapi.AWSSessionDocuments) {
		t.Errorf("the sandbox serves %d AWS documents, ssmdoc names %d", len(ssmapi.AWSSessionDocuments), seen)
	}
}
