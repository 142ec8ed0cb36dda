package doctor

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/creack/pty"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// brokenSandbox is a sandbox whose instance web-1 fails two checks with
// fix commands: the VPC's network ACL denies TCP 443 out (rule 50) and the
// preferences document Doctor-Fix has a 90-minute idle timeout.
func brokenSandbox(t *testing.T) (*sandbox.Sandbox, func(context.Context) (aws.Config, error)) {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "web-1"}}})
	cfg := sb.AWSConfig()
	ctx := context.Background()
	ec2c := ec2.NewFromConfig(cfg)
	acls, err := ec2c.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("default"), Values: []string{"true"}},
		{Name: aws.String("vpc-id"), Values: []string{sb.Instances()[0].VpcID}}}})
	if err != nil || len(acls.NetworkAcls) == 0 {
		t.Fatalf("DescribeNetworkAcls: %v", err)
	}
	_, err = ec2c.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: acls.NetworkAcls[0].NetworkAclId, RuleNumber: aws.Int32(50),
		Egress: aws.Bool(true), Protocol: aws.String("6"), PortRange: &ec2types.PortRange{From: aws.Int32(443), To: aws.Int32(443)},
		CidrBlock: aws.String("0.0.0.0/0"), RuleAction: ec2types.RuleActionDeny})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ssm.NewFromConfig(cfg).CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Doctor-Fix"), DocumentType: ssmtypes.DocumentTypeSession,
		DocumentFormat: ssmtypes.DocumentFormatJson, Content: aws.String(`{"schemaVersion":"1.0","description":"x","sessionType":"Standard_Stream","inputs":{"idleSessionTimeout":"90"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	return sb, func(context.Context) (aws.Config, error) { return cfg, nil }
}

// recordingFixer runs fixes through the SDK and records them.
type recordingFixer struct {
	inner Fixer
	ran   []string
}

func (r *recordingFixer) Run(ctx context.Context, line string) error {
	r.ran = append(r.ran, line)
	return r.inner.Run(ctx, line)
}

func TestDoctorFixYes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	sb, load := brokenSandbox(t)
	cfg, _ := load(context.Background())
	rec := &recordingFixer{inner: doctor.NewFixer(cfg)}
	ios, _, stdout, stderr := iostreams.Test()
	err := doctorRun(context.Background(), &DoctorOptions{IO: ios, AWSConfig: load, Targets: []string{"web-1"}, Document: "Doctor-Fix", Fix: true, Yes: true, Fixer: rec})
	if err != nil {
		t.Fatalf("doctor --fix --yes: %v\n%s\n%s", err, stdout, stderr)
	}
	// Exactly the report's two fix commands, each once, through the SDK.
	if len(rec.ran) != 2 || !strings.HasPrefix(rec.ran[0], "aws ec2 delete-network-acl-entry --network-acl-id acl-") ||
		!strings.HasSuffix(rec.ran[0], "--egress --rule-number 50") || rec.ran[1] != "ssmkit prefs set --document Doctor-Fix --idle-timeout 20" {
		t.Errorf("ran %q", rec.ran)
	}
	errOut := stderr.String()
	for _, want := range []string{"ssmkit doctor --fix will run 2 commands:", "fixes " + sb.Instances()[0].ID + " network.nacl",
		"✓ aws ec2 delete-network-acl-entry", "network.nacl: fail → pass", "prefs.idle-timeout: fail → pass"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(stdout.String(), "1 instance checked, 0 failing") {
		t.Errorf("the report after the fixes:\n%s", stdout)
	}
}

func TestDoctorFixRefusesWithoutTerminal(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios}
	ran := false
	cmd := NewCmdDoctor(f, func(*DoctorOptions) error { ran = true; return nil })
	cmd.SetArgs([]string{"web-1", "--fix"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "needs a terminal") || ran {
		t.Fatalf("err = %v, ran = %v; want a usage error before anything runs", err, ran)
	}
}

// TestDoctorFixConfirmOnTerminal answers the question on a pseudo
// terminal: "n" changes nothing, "y" runs the fixes.
func TestDoctorFixConfirmOnTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	_, load := brokenSandbox(t)
	cfg, _ := load(context.Background())
	for _, answer := range []string{"n", "y"} {
		t.Run(answer, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatalf("opening a pty: %v", err)
			}
			t.Cleanup(func() { ptmx.Close(); tty.Close() })
			screen := &testutil.SyncBuffer{}
			go func() { _, _ = io.Copy(screen, ptmx) }()
			ios := &iostreams.IOStreams{In: tty, Out: io.Discard, ErrOut: tty}
			ios.SetStdinTTY(true)
			ios.SetStderrTTY(true)
			rec := &recordingFixer{inner: doctor.NewFixer(cfg)}
			done := make(chan error, 1)
			go func() {
				done <- doctorRun(context.Background(), &DoctorOptions{IO: ios, AWSConfig: load, Targets: []string{"web-1"}, Document: "Doctor-Fix", Fix: true, Fixer: rec})
			}()
			screen.WaitFor(t, "Run them? [y/N] ", 60*time.Second)
			if _, err := ptmx.Write([]byte(answer + "\r")); err != nil {
				t.Fatal(err)
			}
			err = <-done
			switch answer {
			case "n":
				if !errors.Is(err, cmdutil.SilentError) || len(rec.ran) != 0 {
					t.Errorf("after n: err %v, ran %q", err, rec.ran)
				}
				screen.WaitFor(t, "Nothing was changed.", 60*time.Second)
			case "y":
				if err != nil || len(rec.ran) != 2 {
					t.Errorf("after y: err %v, ran %q", err, rec.ran)
				}
				screen.WaitFor(t, "network.nacl: fail → pass", 60*time.Second)
			}
		})
	}
}
