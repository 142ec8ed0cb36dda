package test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// Bounds of the agent stages. The sandbox polls moto every second.
const (
	registerTimeout = 30 * time.Second
	// neverWindow is how long an instance that must not register is watched.
	neverWindow = 10 * time.Second
)

// newExampleEmulator starts an in-process ssmkit sandbox with auto-attach and no instances of
// its own, in front of a moto server of its own, unless $SSMKIT_AWS_ENDPOINT_URL names another
// emulator (the sandbox is then nil and the agent stages skip).
//
// sandboxtest gives the sandbox a moto server of its own, which matters here: the example
// creates the account-wide SSM-SessionManagerRunShell preferences (KMS, logging), which every
// sandbox on a shared server would apply to its sessions while the example exists.
func newExampleEmulator(t *testing.T) (emulator, *sandbox.Sandbox) {
	t.Helper()
	if os.Getenv(envEndpointURL) != "" {
		return newEmulator(t), nil
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{}, AutoAttach: true})
	return sandboxEmulator(t, sb), sb
}

// pingStatus is the instance's PingStatus through the sandbox, "" when it is not managed.
func pingStatus(t *testing.T, c *ssm.Client, id string) ssmtypes.PingStatus {
	t.Helper()
	out, err := c.DescribeInstanceInformation(testContext(t), &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}}})
	if err != nil {
		t.Fatalf("DescribeInstanceInformation: %v", err)
	}
	for _, i := range out.InstanceInformationList {
		if aws.ToString(i.InstanceId) == id {
			return i.PingStatus
		}
	}
	return ""
}

// waitManaged waits until the instance is a managed instance with PingStatus Online.
func waitManaged(t *testing.T, sb *sandbox.Sandbox, id string) {
	t.Helper()
	c := ssm.NewFromConfig(sb.AWSConfig())
	start := time.Now()
	for pingStatus(t, c, id) != ssmtypes.PingStatusOnline {
		if time.Since(start) > registerTimeout {
			t.Fatalf("%s did not become a managed instance within %v", id, registerTimeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("%s is managed and Online %v after apply", id, time.Since(start).Round(100*time.Millisecond))
}

// assertNeverManaged watches the instance for neverWindow: it must never be managed.
func assertNeverManaged(t *testing.T, sb *sandbox.Sandbox, id string) {
	t.Helper()
	c := ssm.NewFromConfig(sb.AWSConfig())
	for end := time.Now().Add(neverWindow); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if st := pingStatus(t, c, id); st != "" {
			t.Fatalf("%s registered (PingStatus %s) without a route to the service", id, st)
		}
		for _, i := range sb.Attached() {
			if i.ID == id {
				t.Fatalf("%s has an agent without a route to the service", id)
			}
		}
	}
}

// waitDetached waits until a destroyed instance's agent is gone.
func waitDetached(t *testing.T, sb *sandbox.Sandbox, id string) {
	t.Helper()
	deadline := time.Now().Add(registerTimeout)
	for {
		attached := false
		for _, i := range sb.Attached() {
			attached = attached || i.ID == id
		}
		if !attached {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still has an agent after destroy", id)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// echoOK opens a shell on the instance through the sandbox with the protocol core's client,
// runs `echo ok` and exits; it returns the session ID.
func echoOK(t *testing.T, sb *sandbox.Sandbox, id string) string {
	t.Helper()
	cfg := sb.AWSConfig()
	c := session.NewClients(cfg)
	c.Dial.TLSConfig = sb.ClientTLS()
	c.KMS = encryption.NewKMSKeyService(kms.NewFromConfig(cfg))
	ctx, cancel := context.WithTimeout(testContext(t), 60*time.Second)
	defer cancel()
	s, err := session.OpenTarget(ctx, c, session.StartRequest{Target: id}, session.Options{})
	if err != nil {
		t.Fatalf("opening a session on %s: %v", id, err)
	}
	defer s.Close()
	t.Logf("session %s on %s (KMS-encrypted: %t)", s.ID(), id, s.Info().Encrypted)
	inR, inW := io.Pipe()
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- session.RunShell(ctx, s, session.ShellIO{Stdin: inR, Stdout: &out, Stderr: io.Discard})
	}()
	_, _ = io.WriteString(inW, "echo ok\n")
	for !hasLine(out.String(), "ok") {
		select {
		case err := <-done:
			t.Fatalf("the shell ended before printing ok: %v; output %q", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no line \"ok\" in %q", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, _ = io.WriteString(inW, "exit\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shell: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the shell did not end after exit")
	}
	return s.ID()
}

// checkTranscript waits for the session's transcript in the example's log group: the
// sandbox's agent writes it as the real agent does when the preferences name a log group.
//
// The S3 copy is not checked: the example's bucket policy denies requests without TLS
// (aws:SecureTransport), which moto enforces, and the sandbox reaches moto over plain HTTP, so
// that PutObject is refused in the emulator while the real agent's HTTPS upload is allowed.
func checkTranscript(t *testing.T, sb *sandbox.Sandbox, logGroup, sessionID string) {
	t.Helper()
	c := cloudwatchlogs.NewFromConfig(sb.AWSConfig())
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := c.GetLogEvents(testContext(t), &cloudwatchlogs.GetLogEventsInput{
			LogGroupName: aws.String(logGroup), LogStreamName: aws.String(sessionID), StartFromHead: aws.Bool(true)})
		if err == nil {
			var text strings.Builder
			for _, e := range out.Events {
				text.WriteString(aws.ToString(e.Message))
			}
			if strings.Contains(text.String(), "echo ok") {
				t.Logf("transcript of %s in log group %s (%d events)", sessionID, logGroup, len(out.Events))
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transcript of %s in log group %s: %v", sessionID, logGroup, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// doctorStage runs the doctor's package API (the checks behind `ssmkit doctor --json`) on the
// instance. A healthy instance must fail no check; one without endpoints must fail
// network.endpoints naming the three missing services.
func doctorStage(t *testing.T, sb *sandbox.Sandbox, id string, healthy bool) {
	t.Helper()
	g := doctor.Gatherer{Clients: doctor.NewClients(sb.AWSConfig()), Region: sb.Region()}
	facts, err := g.Gather(testContext(t), doctor.Selection{Targets: []string{id}})
	if err != nil {
		t.Fatalf("doctor: gathering facts for %s: %v", id, err)
	}
	rep := doctor.Run(facts, time.Now())
	if len(rep.Instances) != 1 || rep.Instances[0].ID != id {
		t.Fatalf("doctor reported on %+v, want %s", rep.Instances, id)
	}
	checks := map[string]doctor.Check{}
	for _, c := range rep.Instances[0].Checks {
		checks[c.ID] = c
		if c.Status != doctor.Fail || !healthy {
			continue
		}
		t.Errorf("doctor check %s fails: %s %v (fix: %s)", c.ID, c.Summary, c.Evidence, c.Fix)
	}
	if healthy {
		return
	}
	// The doctor names the missing endpoints in the failing path check (network.route) and
	// skips the per-endpoint checks; accept the names in any failing network check.
	named := false
	var failing []string
	for _, c := range rep.Instances[0].Checks {
		if c.Status != doctor.Fail {
			continue
		}
		failing = append(failing, c.ID+": "+c.Summary)
		text := c.Summary + " " + strings.Join(c.Evidence, " ")
		if strings.HasPrefix(c.ID, "network.") && strings.Contains(text, "ssmmessages") &&
			strings.Contains(text, "ec2messages") && strings.Contains(strings.ReplaceAll(text, "ssmmessages", ""), "ssm") {
			named = true
		}
	}
	if !named {
		t.Errorf("no failing network check names the ssm, ssmmessages and ec2messages endpoints: %q", failing)
	}
	if c := checks["agent.online"]; c.Status != doctor.Fail {
		t.Errorf("doctor's agent.online = %+v, want a failure for an unregistered instance", c)
	}
}

// writeFile writes content to dir/name.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hasLine reports whether out holds line on a line of its own (a pty ends lines in \r\n, and
// echoes the command line itself).
func hasLine(out, line string) bool {
	for _, s := range strings.Split(out, "\n") {
		if strings.TrimRight(s, "\r") == line {
			return true
		}
	}
	return false
}
