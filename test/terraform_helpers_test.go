package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/test/tfharness"
)

// envEndpointURL points the Terraform tests at an emulator other than moto (LocalStack, the
// ssmkit sandbox). Unset, each test starts its own moto server.
const envEndpointURL = "SSMKIT_AWS_ENDPOINT_URL"

// testRegion is the region every emulator test deploys into.
const testRegion = "us-east-1"

// emulator is the AWS stand-in one test applies against.
type emulator struct {
	URL string
	// Moto is true when moto is behind the endpoint, whose gaps the fixtures work around
	// through variables.
	Moto bool
	// KeyID and Secret sign every request: an ssmkit sandbox verifies SigV4 with credentials
	// of its own per run; other emulators take anything.
	KeyID, Secret string
}

// sandboxEmulator is the emulator for an in-process ssmkit sandbox, with its credentials.
func sandboxEmulator(t *testing.T, sb *sandbox.Sandbox) emulator {
	t.Helper()
	c, err := sb.Credentials().Retrieve(context.Background())
	if err != nil {
		t.Fatalf("sandbox credentials: %v", err)
	}
	return emulator{URL: sb.URL(), Moto: true, KeyID: c.AccessKeyID, Secret: c.SecretAccessKey}
}

// newEmulator starts an in-process ssmkit sandbox (with a private moto behind it) unless
// $SSMKIT_AWS_ENDPOINT_URL names another emulator. The sandbox serves what moto lacks,
// such as the default host management service setting.
func newEmulator(t *testing.T) emulator {
	t.Helper()
	if u := os.Getenv(envEndpointURL); u != "" {
		return emulator{URL: u, KeyID: "test", Secret: "test"}
	}
	return sandboxEmulator(t, sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{}}))
}

// env is what terraform processes need to talk to the emulator: its credentials and no
// instance metadata lookups.
func (e emulator) env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":         e.KeyID,
		"AWS_SECRET_ACCESS_KEY":     e.Secret,
		"AWS_REGION":                testRegion,
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// awsConfig is an SDK config whose every client talks to the emulator.
func (e emulator) awsConfig() aws.Config {
	return aws.Config{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(e.KeyID, e.Secret, ""),
		BaseEndpoint: aws.String(e.URL),
	}
}

// uniqueName returns a lower-case name that is unique per call and valid for buckets, roles
// and documents, so that tests can share one emulator.
func uniqueName(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
}

// repoRoot is the checkout root (the folder holding go.mod).
func repoRoot(t *testing.T) string {
	t.Helper()
	return tfharness.RepoRoot(t)
}

// terraformDirs lists the folders directly under root/rel, relative to root.
func terraformDirs(t *testing.T, root, rel string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("listing %s: %v", rel, err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, filepath.Join(rel, e.Name()))
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no folders under %s", rel)
	}
	return dirs
}

// copyFixture copies test/fixtures/<name> to a temporary folder together with the
// provider configuration all fixtures share (test/fixtures/provider.tf).
func copyFixture(t *testing.T, root, name string) string {
	t.Helper()
	dir := tfharness.CopyToTemp(t, root, filepath.Join("test/fixtures", name))
	b, err := os.ReadFile(filepath.Join(root, "test/fixtures/provider.tf"))
	if err != nil {
		t.Fatalf("reading the shared fixture provider: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "provider.tf"), b, 0o644); err != nil {
		t.Fatalf("writing the fixture provider: %v", err)
	}
	return dir
}

// testContext bounds a test's terraform commands by its deadline, if any.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}
