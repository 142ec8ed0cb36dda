package test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/gruntwork-io/terratest/modules/terraform"

	"github.com/ssmkit/ssmkit/test/tfharness"
)

// fixture is one test/fixtures/<module> applied against an emulator.
type fixture struct {
	em   emulator
	opts *terraform.Options
	name string
}

// applyFixture copies test/fixtures/<module> to a temp dir and applies it with a unique
// name. The returned destroy func is idempotent: defer it, and call it explicitly before
// checking that everything is gone.
func applyFixture(t *testing.T, module string, vars map[string]any) (*fixture, func()) {
	t.Helper()
	h := tfharness.New(t)
	em := newEmulator(t)
	dir := copyFixture(t, repoRoot(t), module)
	name := uniqueName("tt")
	all := map[string]any{"endpoint_url": em.URL, "region": testRegion, "name": name}
	for k, v := range vars {
		all[k] = v
	}
	opts := h.Options(dir, all, em.env())
	destroyed := false
	destroy := func() {
		if destroyed {
			return
		}
		destroyed = true
		terraform.Destroy(t, opts)
	}
	// Destroy even when apply fails half-way.
	if _, err := terraform.InitAndApplyE(t, opts); err != nil {
		destroy()
		t.Fatalf("applying fixture %s: %v", module, err)
	}
	return &fixture{em: em, opts: opts, name: name}, destroy
}

func TestTerraformVPCEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	f, destroy := applyFixture(t, "vpc-endpoints", nil)
	defer destroy()
	ctx := testContext(t)
	client := ec2.NewFromConfig(f.em.awsConfig())

	ids := terraform.OutputMap(t, f.opts, "endpoint_ids")
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages", "kms", "logs"} {
		if ids[svc] == "" {
			t.Errorf("endpoint_ids has no %s: %v", svc, ids)
		}
	}
	if len(ids) != 5 {
		t.Errorf("endpoint_ids = %v, want 5 services", ids)
	}
	sg := terraform.Output(t, f.opts, "security_group_id")
	subnets := terraform.OutputList(t, f.opts, "subnet_ids")
	var all []string
	for _, id := range ids {
		all = append(all, id)
	}
	out, err := client.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: all})
	if err != nil {
		t.Fatalf("describing endpoints: %v", err)
	}
	if len(out.VpcEndpoints) != len(all) {
		t.Fatalf("found %d endpoints, want %d", len(out.VpcEndpoints), len(all))
	}
	for _, e := range out.VpcEndpoints {
		svc := aws.ToString(e.ServiceName)
		if e.VpcEndpointType != ec2types.VpcEndpointTypeInterface {
			t.Errorf("%s: type %s, want Interface", svc, e.VpcEndpointType)
		}
		if !aws.ToBool(e.PrivateDnsEnabled) {
			t.Errorf("%s: private DNS is off", svc)
		}
		if len(e.SubnetIds) != len(subnets) {
			t.Errorf("%s: subnets %v, want %v", svc, e.SubnetIds, subnets)
		}
		if len(e.Groups) != 1 || aws.ToString(e.Groups[0].GroupId) != sg {
			t.Errorf("%s: security groups %v, want [%s]", svc, e.Groups, sg)
		}
		if !strings.HasPrefix(svc, "com.amazonaws."+testRegion+".") {
			t.Errorf("service name %s is not in %s", svc, testRegion)
		}
	}
	dns := terraform.OutputMapOfObjects(t, f.opts, "dns_entries")
	if entries, _ := dns["ssmmessages"].([]any); len(entries) == 0 {
		t.Errorf("dns_entries has no ssmmessages names: %v", dns)
	}

	groups, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil || len(groups.SecurityGroups) != 1 {
		t.Fatalf("describing security group %s: %v", sg, err)
	}
	perms := groups.SecurityGroups[0].IpPermissions
	if len(perms) != 1 || aws.ToInt32(perms[0].FromPort) != 443 || aws.ToInt32(perms[0].ToPort) != 443 ||
		len(perms[0].IpRanges) != 1 || aws.ToString(perms[0].IpRanges[0].CidrIp) != "10.77.0.0/16" {
		t.Errorf("ingress = %+v, want TCP 443 from the VPC CIDR 10.77.0.0/16", perms)
	}

	s3id := terraform.Output(t, f.opts, "s3_gateway_endpoint_id")
	gw, err := client.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{s3id}})
	if err != nil || len(gw.VpcEndpoints) != 1 || gw.VpcEndpoints[0].VpcEndpointType != ec2types.VpcEndpointTypeGateway || len(gw.VpcEndpoints[0].RouteTableIds) != 1 {
		t.Errorf("s3 gateway endpoint %s: %+v, %v", s3id, gw, err)
	}

	vpc := terraform.Output(t, f.opts, "vpc_id")
	destroy()
	left, err := client.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}},
	})
	if err != nil {
		t.Fatalf("listing endpoints after destroy: %v", err)
	}
	for _, e := range left.VpcEndpoints {
		if !strings.EqualFold(string(e.State), string(ec2types.StateDeleted)) {
			t.Errorf("endpoint %s left after destroy (state %s)", aws.ToString(e.VpcEndpointId), e.State)
		}
	}
}

func TestTerraformInstanceRole(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	f, destroy := applyFixture(t, "instance-role", nil)
	defer destroy()
	ctx := testContext(t)
	client := iam.NewFromConfig(f.em.awsConfig())
	role := terraform.Output(t, f.opts, "role_name")
	keyARN := terraform.Output(t, f.opts, "kms_key_arn")

	attached, err := client.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatalf("listing policies of %s: %v", role, err)
	}
	if len(attached.AttachedPolicies) != 1 || aws.ToString(attached.AttachedPolicies[0].PolicyName) != "AmazonSSMManagedInstanceCore" {
		t.Errorf("attached = %+v, want AmazonSSMManagedInstanceCore only", attached.AttachedPolicies)
	}
	profile, err := client.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(terraform.Output(t, f.opts, "instance_profile_name"))})
	if err != nil || len(profile.InstanceProfile.Roles) != 1 || aws.ToString(profile.InstanceProfile.Roles[0].RoleName) != role {
		t.Errorf("instance profile does not hold role %s: %+v, %v", role, profile, err)
	}

	inline, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("session-logging")})
	if err != nil {
		t.Fatalf("getting inline policy: %v", err)
	}
	doc := decodePolicy(t, aws.ToString(inline.PolicyDocument))
	want := map[string][]string{
		"SessionLogsToS3":                 {"s3:PutObject"},
		"CheckSessionLogBucketEncryption": {"s3:GetEncryptionConfiguration"},
		"SessionLogsToCloudWatch":         {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
		"FindSessionLogGroup":             {"logs:DescribeLogGroups"},
		"SessionEncryption":               {"kms:Decrypt", "kms:GenerateDataKey"},
	}
	for _, st := range doc.Statement {
		if w, ok := want[st.Sid]; !ok || strings.Join(st.Action, ",") != strings.Join(w, ",") {
			t.Errorf("statement %s actions %v, want %v", st.Sid, st.Action, w)
		}
		delete(want, st.Sid)
		if st.Sid == "SessionLogsToS3" && (len(st.Resource) != 1 || st.Resource[0] != "arn:aws:s3:::"+f.name+"-logs/sessions/*") {
			t.Errorf("s3 resource = %v", st.Resource)
		}
		if st.Sid == "SessionEncryption" && (len(st.Resource) != 1 || st.Resource[0] != keyARN) {
			t.Errorf("kms resource = %v, want %s", st.Resource, keyARN)
		}
	}
	for sid := range want {
		t.Errorf("inline policy lacks statement %s", sid)
	}

	destroy()
	_, err = client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("role %s after destroy: err = %v, want NoSuchEntity", role, err)
	}
}

func TestTerraformDefaultHostManagement(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	// The service setting comes from the sandbox (moto has no service setting API).
	f, destroy := applyFixture(t, "default-host-management", nil)
	defer destroy()
	ctx := testContext(t)
	client := iam.NewFromConfig(f.em.awsConfig())
	role := terraform.Output(t, f.opts, "role_name")

	got, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatalf("getting role: %v", err)
	}
	if p := aws.ToString(got.Role.Path); p != "/service-role/" {
		t.Errorf("role path = %q, want /service-role/", p)
	}
	trust := decodePolicy(t, aws.ToString(got.Role.AssumeRolePolicyDocument))
	if len(trust.Statement) != 1 || !strings.Contains(string(trust.Statement[0].Principal), "ssm.amazonaws.com") {
		t.Errorf("trust policy = %+v, want ssm.amazonaws.com", trust)
	}
	attached, err := client.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil || len(attached.AttachedPolicies) != 1 || aws.ToString(attached.AttachedPolicies[0].PolicyName) != "AmazonSSMManagedEC2InstanceDefaultPolicy" {
		t.Errorf("attached = %+v (%v), want AmazonSSMManagedEC2InstanceDefaultPolicy", attached, err)
	}
	{
		setting, err := ssm.NewFromConfig(f.em.awsConfig()).GetServiceSetting(ctx, &ssm.GetServiceSettingInput{
			SettingId: aws.String("/ssm/managed-instance/default-ec2-instance-management-role"),
		})
		if err != nil {
			t.Fatalf("getting service setting: %v", err)
		}
		if v := aws.ToString(setting.ServiceSetting.SettingValue); v != "service-role/"+role {
			t.Errorf("service setting = %q, want service-role/%s", v, role)
		}
	}

	destroy()
	_, err = client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("role %s after destroy: err = %v, want NoSuchEntity", role, err)
	}
}

func TestTerraformSessionPreferences(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	f, destroy := applyFixture(t, "session-preferences", nil)
	defer destroy()
	ctx := testContext(t)
	cfg := f.em.awsConfig()
	docName := terraform.Output(t, f.opts, "document_name")
	bucket := terraform.Output(t, f.opts, "s3_bucket_name")
	group := terraform.Output(t, f.opts, "cloudwatch_log_group_name")
	keyARN := terraform.Output(t, f.opts, "kms_key_arn")

	doc, err := ssm.NewFromConfig(cfg).GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String(docName)})
	if err != nil {
		t.Fatalf("getting document %s: %v", docName, err)
	}
	if doc.DocumentType != "Session" || doc.DocumentFormat != "JSON" {
		t.Errorf("document type/format = %s/%s, want Session/JSON", doc.DocumentType, doc.DocumentFormat)
	}
	var content struct {
		SchemaVersion string         `json:"schemaVersion"`
		SessionType   string         `json:"sessionType"`
		Inputs        map[string]any `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(doc.Content)), &content); err != nil {
		t.Fatalf("document content is not JSON: %v", err)
	}
	if content.SchemaVersion != "1.0" || content.SessionType != "Standard_Stream" {
		t.Errorf("schemaVersion/sessionType = %s/%s", content.SchemaVersion, content.SessionType)
	}
	for k, want := range map[string]any{
		"s3BucketName": bucket, "s3KeyPrefix": "sessions/", "s3EncryptionEnabled": true,
		"cloudWatchLogGroupName": group, "cloudWatchEncryptionEnabled": true, "cloudWatchStreamingEnabled": true,
		"kmsKeyId": keyARN, "runAsEnabled": true, "runAsDefaultUser": "ec2-user",
		"idleSessionTimeout": "15", "maxSessionDuration": "60",
	} {
		if got := content.Inputs[k]; got != want {
			t.Errorf("inputs.%s = %v, want %v", k, got, want)
		}
	}
	if sp, _ := content.Inputs["shellProfile"].(map[string]any); sp["linux"] != "exec bash -l" {
		t.Errorf("inputs.shellProfile = %v", content.Inputs["shellProfile"])
	}

	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	enc, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("getting bucket encryption: %v", err)
	}
	rule := enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault
	if rule.SSEAlgorithm != s3types.ServerSideEncryptionAwsKms || aws.ToString(rule.KMSMasterKeyID) != keyARN {
		t.Errorf("bucket encryption = %s/%s, want aws:kms/%s", rule.SSEAlgorithm, aws.ToString(rule.KMSMasterKeyID), keyARN)
	}
	pab, err := s3c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)})
	if err != nil || !aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) || !aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets) {
		t.Errorf("public access block = %+v, %v", pab, err)
	}
	pol, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"aws:SecureTransport":"false"`) {
		t.Errorf("bucket policy = %v, %v; want a TLS-only deny", aws.ToString(pol.Policy), err)
	}
	lc, err := s3c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil || len(lc.Rules) != 1 || lc.Rules[0].Expiration == nil || aws.ToInt32(lc.Rules[0].Expiration.Days) != 30 {
		t.Errorf("lifecycle = %+v, %v; want expiry after 30 days", lc, err)
	}

	logs := cloudwatchlogs.NewFromConfig(cfg)
	lg, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)})
	if err != nil || len(lg.LogGroups) != 1 {
		t.Fatalf("describing log group %s: %+v, %v", group, lg, err)
	}
	if r := aws.ToInt32(lg.LogGroups[0].RetentionInDays); r != 90 {
		t.Errorf("retention = %d, want 90", r)
	}
	if k := aws.ToString(lg.LogGroups[0].KmsKeyId); k != keyARN {
		t.Errorf("log group key = %q, want %s", k, keyARN)
	}

	kc := kms.NewFromConfig(cfg)
	kp, err := kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyARN), PolicyName: aws.String("default")})
	if err != nil || !strings.Contains(aws.ToString(kp.Policy), "logs."+testRegion+".amazonaws.com") {
		t.Errorf("key policy = %v, %v; want the regional logs principal", aws.ToString(kp.Policy), err)
	}

	destroy()
	if _, err := ssm.NewFromConfig(cfg).GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String(docName)}); err == nil {
		t.Errorf("document %s left after destroy", docName)
	}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		t.Errorf("bucket %s left after destroy", bucket)
	}
	if lg, err := logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(group)}); err != nil || len(lg.LogGroups) != 0 {
		t.Errorf("log group %s after destroy: %+v, %v", group, lg, err)
	}
	if k, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)}); err != nil || k.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Errorf("key %s after destroy: %+v, %v; want PendingDeletion", keyARN, k, err)
	}
}

func TestTerraformUserAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping terraform apply under -short")
	}
	t.Parallel()
	f, destroy := applyFixture(t, "user-access", nil)
	defer destroy()
	ctx := testContext(t)
	client := iam.NewFromConfig(f.em.awsConfig())
	policyARN := terraform.Output(t, f.opts, "policy_arn")
	role := terraform.Output(t, f.opts, "role_name")
	group := terraform.Output(t, f.opts, "group_name")

	ra, err := client.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil || len(ra.AttachedPolicies) != 1 || aws.ToString(ra.AttachedPolicies[0].PolicyArn) != policyARN {
		t.Errorf("role %s policies = %+v, %v; want %s", role, ra, err, policyARN)
	}
	ga, err := client.ListAttachedGroupPolicies(ctx, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String(group)})
	if err != nil || len(ga.AttachedPolicies) != 1 || aws.ToString(ga.AttachedPolicies[0].PolicyArn) != policyARN {
		t.Errorf("group %s policies = %+v, %v; want %s", group, ga, err, policyARN)
	}
	p, err := client.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		t.Fatalf("getting policy: %v", err)
	}
	v, err := client.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("getting policy version: %v", err)
	}
	doc := decodePolicy(t, aws.ToString(v.PolicyVersion.Document))
	var docs []string
	for _, st := range doc.Statement {
		if st.Sid == "StartSessionWithAllowedDocuments" {
			docs = st.Resource
		}
	}
	if strings.Join(docs, ",") != "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell,arn:aws:ssm:*::document/AWS-StartPortForwardingSession,arn:aws:ssm:*::document/AWS-StartSSHSession" {
		t.Errorf("allowed documents = %v", docs)
	}

	destroy()
	_, err = client.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("policy %s after destroy: err = %v, want NoSuchEntity", policyARN, err)
	}
}

// policyDoc is the part of an IAM policy document the tests read. Action and Resource may be
// a string or a list in IAM JSON.
type policyDoc struct {
	Statement []struct {
		Sid       string          `json:"Sid"`
		Action    stringList      `json:"Action"`
		Resource  stringList      `json:"Resource"`
		Principal json.RawMessage `json:"Principal"`
	} `json:"Statement"`
}

type stringList []string

// UnmarshalJSON accepts a string or a list of strings.
func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// decodePolicy parses a policy document; IAM returns them URL-encoded.
func decodePolicy(t *testing.T, raw string) policyDoc {
	t.Helper()
	if dec, err := url.QueryUnescape(raw); err == nil {
		raw = dec
	}
	var d policyDoc
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatalf("parsing policy %q: %v", raw, err)
	}
	return d
}
