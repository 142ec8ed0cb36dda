//go:build realaws

package test

import (
	"os"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"

	"github.com/ssmkit/ssmkit/test/tfharness"
)

// TestTerraformExampleRealAWS applies the example in a real AWS account. It needs the build tag
// realaws, SSMKIT_REAL_AWS=1, credentials in the environment and SSMKIT_REAL_AWS_AMI (an AMI
// with the SSM agent in AWS_REGION). It creates billable resources and destroys them.
func TestTerraformExampleRealAWS(t *testing.T) {
	if os.Getenv("SSMKIT_REAL_AWS") != "1" {
		t.Skip("skipping: set SSMKIT_REAL_AWS=1 to apply the example in a real AWS account")
	}
	ami := os.Getenv("SSMKIT_REAL_AWS_AMI")
	if ami == "" {
		t.Skip("skipping: set SSMKIT_REAL_AWS_AMI to an AMI that runs the SSM agent")
	}
	h := tfharness.New(t)
	dir := tfharness.CopyToTemp(t, repoRoot(t), "terraform/examples/private-instance")
	vars := map[string]any{"name": uniqueName("ssmkit"), "ami_id": ami}
	if r := os.Getenv("AWS_REGION"); r != "" {
		vars["region"] = r
	}
	opts := h.Options(dir, vars, nil)
	defer terraform.Destroy(t, opts)
	terraform.InitAndApply(t, opts)
	if terraform.Output(t, opts, "instance_id") == "" {
		t.Error("instance_id is empty")
	}
}
