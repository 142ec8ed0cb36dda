package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// memberInstance launches one instance tagged team=ops in account (through
// credentials of a role assumed there) and, when registered, makes it a
// managed node of that account.
func memberInstance(t *testing.T, sb *sandbox.Sandbox, account string, registered bool) string {
	t.Helper()
	ctx := context.Background()
	out, err := sts.NewFromConfig(sb.AWSConfig()).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + account + ":role/Setup"), RoleSessionName: aws.String("setup")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sb.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	ec2c := ec2.NewFromConfig(cfg)
	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.9.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sub.Subnet.SubnetId,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	if registered {
		body, _ := json.Marshal(map[string]string{"InstanceId": id, "AgentVersion": "3.3.1142.0", "PlatformType": "Linux"})
		req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
		sandboxtest.SignWith(t, cfg.Credentials, sb.Region(), "ssm", req, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("UpdateInstanceInformation: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	return id
}

// TestDoctorAcrossAccounts: --role-arn without --accounts lists the
// organization's accounts (moto's Organizations), assumes the role in
// each and reports every account's fleet with per-account totals.
func TestDoctorAcrossAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "web-1", Tags: map[string]string{"team": "ops"}}}})
	ctx := context.Background()
	org := organizations.NewFromConfig(sb.AWSConfig())
	if _, err := org.CreateOrganization(ctx, &organizations.CreateOrganizationInput{}); err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, name := range []string{"blue", "green"} {
		out, err := org.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String(name), Email: aws.String(name + "@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, aws.ToString(out.CreateAccountStatus.AccountId))
	}
	healthy := memberInstance(t, sb, members[0], true) // registered
	broken := memberInstance(t, sb, members[1], false)
	load := func(context.Context) (aws.Config, error) { return sb.AWSConfig(), nil }

	ios, _, stdout, _ := iostreams.Test()
	err := doctorRun(ctx, &DoctorOptions{IO: ios, AWSConfig: load, Filters: []string{"tag:team=ops"}, RoleARN: "arn:aws:iam::000000000000:role/Audit",
		Regions: []string{sb.Region()}, JSON: true, Stats: true, Document: doctor.DefaultDocument})
	if !errors.Is(err, cmdutil.SilentError) {
		t.Fatalf("err = %v (account %s has an unregistered instance)", err, members[1])
	}
	var rep doctor.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	accounts := map[string]doctor.AccountSummary{}
	for _, a := range rep.Accounts {
		accounts[a.Account] = a
	}
	// The members' bare instances lack a profile and a route (and an
	// agent); only the first one's registered, in its own account.
	if len(rep.Accounts) != 3 || accounts[sb.AccountID()].Instances != 1 || accounts[sb.AccountID()].Failing != 0 ||
		accounts[members[0]].Instances != 1 || accounts[members[1]].Instances != 1 ||
		!slices.Equal(accounts[members[1]].Regions, []string{sb.Region()}) {
		t.Errorf("per-account totals: %+v", rep.Accounts)
	}
	where := map[string]string{}
	online := map[string]doctor.Status{}
	for _, in := range rep.Instances {
		where[in.ID] = in.Account + " " + in.Region
		for _, c := range in.Checks {
			if c.ID == "agent.version" {
				online[in.ID] = c.Status
			}
		}
	}
	if online[healthy] != doctor.Pass || online[broken] != doctor.Skip {
		t.Errorf("agent.version by instance (registered in its account or not): %v", online)
	}
	if where[healthy] != members[0]+" "+sb.Region() || where[broken] != members[1]+" "+sb.Region() {
		t.Errorf("instances by account: %v", where)
	}
	if rep.Calls["STS.AssumeRole"] != 3 || rep.Calls["Organizations.ListAccounts"] != 1 {
		t.Errorf("calls: %v", rep.Calls)
	}

	// --accounts names the accounts instead; the human report ends with
	// the totals.
	ios, _, stdout, _ = iostreams.Test()
	err = doctorRun(ctx, &DoctorOptions{IO: ios, AWSConfig: load, All: true, RoleARN: "arn:aws:iam::000000000000:role/Audit", Accounts: []string{members[0]},
		Document: doctor.DefaultDocument})
	if !errors.Is(err, cmdutil.SilentError) {
		t.Fatalf("err = %v\n%s", err, stdout)
	}
	if out := stdout.String(); !strings.Contains(out, "Per account") || !strings.Contains(out, members[0]+"\t"+sb.Region()+"\t1\t1\t") ||
		strings.Contains(out, members[1]) {
		t.Errorf("human report:\n%s", out)
	}
}
