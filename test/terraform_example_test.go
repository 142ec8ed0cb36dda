package test

import (
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/gruntwork-io/terratest/modules/terraform"
	test_structure "github.com/gruntwork-io/terratest/modules/test-structure"

	"github.com/ssmkit/ssmkit/test/tfharness"
)

// TestTerraformExamplePrivateInstance applies terraform/examples/private-instance against the
// ssmkit sandbox (moto behind it, auto-attach on), checks its outputs and resources, waits for
// the instance's emulated agent to register through the example's endpoints, runs the doctor
// and a shell session on it, and destroys. Stages can be skipped with SKIP_<stage>=1
// (terratest's convention), for example SKIP_destroy=1 to inspect the emulator afterwards.
func TestTerraformExamplePrivateInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	h := tfharness.New(t)
	em, sb := newExampleEmulator(t)
	dir := tfharness.CopyToTemp(t, repoRoot(t), "terraform/examples/private-instance")
	vars := map[string]any{
		"aws_endpoint_url": em.URL,
		"region":           testRegion,
		"name":             uniqueName("ex"),
	}
	if em.Moto {
		// moto has no AMI snapshots to size the root volume from.
		vars["root_volume_size"] = 8
	}
	opts := h.Options(dir, vars, em.env())

	var instance string
	defer func() {
		test_structure.RunTestStage(t, "destroy", func() {
			terraform.Destroy(t, opts)
			if sb != nil && instance != "" {
				waitDetached(t, sb, instance)
			}
		})
	}()

	test_structure.RunTestStage(t, "apply", func() {
		terraform.InitAndApply(t, opts)
		instance = terraform.Output(t, opts, "instance_id")
	})

	test_structure.RunTestStage(t, "check_outputs_and_resources", func() {
		ctx := testContext(t)
		instance := terraform.Output(t, opts, "instance_id")
		if got, want := terraform.Output(t, opts, "ssmkit_start_command"), "ssmkit start "+instance; got != want {
			t.Errorf("ssmkit_start_command = %q, want %q", got, want)
		}
		vpc := terraform.Output(t, opts, "vpc_id")
		subnets := terraform.OutputList(t, opts, "private_subnet_ids")
		endpoints := terraform.OutputMap(t, opts, "vpc_endpoint_ids")
		if len(endpoints) != 5 {
			t.Errorf("vpc_endpoint_ids = %v, want ssm, ssmmessages, ec2messages, kms, logs", endpoints)
		}

		client := ec2.NewFromConfig(em.awsConfig())
		sn, err := client.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
		if err != nil {
			t.Fatalf("describing subnets: %v", err)
		}
		azs := map[string]bool{}
		for _, s := range sn.Subnets {
			azs[aws.ToString(s.AvailabilityZone)] = true
			if aws.ToBool(s.MapPublicIpOnLaunch) {
				t.Errorf("subnet %s maps public IPs", aws.ToString(s.SubnetId))
			}
		}
		if len(sn.Subnets) != 2 || len(azs) != 2 {
			t.Errorf("want two private subnets in two AZs, got %d in %v", len(sn.Subnets), azs)
		}

		// Private means no internet and no NAT gateway in the VPC.
		vpcFilter := []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpc}}}
		if igw, err := client.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: vpcFilter}); err != nil || len(igw.InternetGateways) != 0 {
			t.Errorf("internet gateways in %s: %+v, %v", vpc, igw, err)
		}
		natFilter := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}
		if nat, err := client.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: natFilter}); err != nil || len(nat.NatGateways) != 0 {
			t.Errorf("NAT gateways in %s: %+v, %v", vpc, nat, err)
		}

		inst, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
		if err != nil || len(inst.Reservations) != 1 || len(inst.Reservations[0].Instances) != 1 {
			t.Fatalf("describing instance %s: %+v, %v", instance, inst, err)
		}
		i := inst.Reservations[0].Instances[0]
		if i.IamInstanceProfile == nil || !strings.HasSuffix(aws.ToString(i.IamInstanceProfile.Arn), "/"+terraform.Output(t, opts, "instance_role_name")) {
			t.Errorf("instance profile = %+v, want the instance-role module's profile", i.IamInstanceProfile)
		}
		if aws.ToString(i.PublicIpAddress) != "" {
			t.Errorf("instance has a public IP %s", aws.ToString(i.PublicIpAddress))
		}
		tagged := false
		for _, tag := range i.Tags {
			tagged = tagged || (aws.ToString(tag.Key) == "ssmkit:access" && aws.ToString(tag.Value) == "true")
		}
		if !tagged {
			t.Errorf("instance lacks the ssmkit:access=true tag the operator policy requires: %v", i.Tags)
		}
		for _, o := range []string{"operator_policy_arn", "preferences_document_name", "session_logs_bucket", "session_log_group", "kms_key_arn"} {
			if terraform.Output(t, opts, o) == "" {
				t.Errorf("output %s is empty", o)
			}
		}
	})

	// Subtests, so that a skip is reported without hiding that the stages above passed.
	t.Run("agent_registration", func(t *testing.T) {
		if sb == nil {
			t.Skipf("$%s points at another emulator: this stage needs the in-process ssmkit sandbox", envEndpointURL)
		}
		if os.Getenv("SKIP_apply") != "" {
			t.Skip("SKIP_apply: nothing was applied")
		}
		instance := terraform.Output(t, opts, "instance_id")
		waitManaged(t, sb, instance)
		t.Run("doctor", func(t *testing.T) { doctorStage(t, sb, instance, true) })
		t.Run("session_echo_ok", func(t *testing.T) {
			id := echoOK(t, sb, instance)
			// The example's preferences stream sessions to its log group.
			checkTranscript(t, sb, terraform.Output(t, opts, "session_log_group"), id)
		})
	})
}

// TestTerraformExamplePrivateInstanceWithoutEndpoints applies the example with its endpoints
// module switched off (create = false, through a Terraform override file, so the example itself
// stays as users see it): the instance has a role but no route to the service, so its agent
// must never register, and the doctor must name the missing endpoints.
func TestTerraformExamplePrivateInstanceWithoutEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	if os.Getenv(envEndpointURL) != "" {
		t.Skipf("$%s points at another emulator: this test needs the in-process ssmkit sandbox", envEndpointURL)
	}
	t.Parallel()
	h := tfharness.New(t)
	em, sb := newExampleEmulator(t)
	dir := tfharness.CopyToTemp(t, repoRoot(t), "terraform/examples/private-instance")
	writeFile(t, dir, "no_endpoints_override.tf", noEndpointsOverride)
	vars := map[string]any{
		"aws_endpoint_url": em.URL,
		"region":           testRegion,
		"name":             uniqueName("noep"),
		"root_volume_size": 8,
	}
	opts := h.Options(dir, vars, em.env())
	defer test_structure.RunTestStage(t, "destroy", func() { terraform.Destroy(t, opts) })
	test_structure.RunTestStage(t, "apply", func() { terraform.InitAndApply(t, opts) })
	if os.Getenv("SKIP_apply") != "" {
		return
	}
	if ids := terraform.OutputMap(t, opts, "vpc_endpoint_ids"); len(ids) != 0 {
		t.Fatalf("the override left endpoints: %v", ids)
	}
	instance := terraform.Output(t, opts, "instance_id")
	t.Run("never_registers", func(t *testing.T) { assertNeverManaged(t, sb, instance) })
	t.Run("doctor", func(t *testing.T) { doctorStage(t, sb, instance, false) })
}

// noEndpointsOverride switches the example's endpoints module off; the security group's
// egress to the s3 gateway prefix list goes with it (override files replace nested blocks).
const noEndpointsOverride = `# Written by TestTerraformExamplePrivateInstanceWithoutEndpoints.
module "endpoints" {
  create = false
}

resource "aws_security_group" "instance" {
  egress {
    description = "HTTPS inside the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}
`
