package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

const ec2Trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// world builds scenario resources through the AWS APIs of a sandbox.
type world struct {
	t   *testing.T
	ctx context.Context
	sb  *sandbox.Sandbox
	cfg aws.Config
	ec2 *ec2.Client
	iam *iam.Client
	ssm *ssm.Client
}

func newWorld(t *testing.T, specs []sandbox.InstanceSpec) *world {
	sb := sandboxtest.Start(t, sandbox.Options{Instances: specs})
	cfg := sb.AWSConfig()
	return &world{t: t, ctx: context.Background(), sb: sb, cfg: cfg,
		ec2: ec2.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
}

func (w *world) must(err error, what string) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) byName(name string) *sandbox.Instance {
	for _, i := range w.sb.Instances() {
		if i.Name == name {
			return i
		}
	}
	w.t.Fatalf("no sandbox instance %s", name)
	return nil
}

// role creates a role trusted by EC2 with the given managed and inline
// policies, and an instance profile of the same name.
func (w *world) role(name string, managed []string, inline map[string]string) string {
	_, err := w.iam.CreateRole(w.ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2Trust)})
	w.must(err, "CreateRole")
	for _, arn := range managed {
		_, err := w.iam.AttachRolePolicy(w.ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)})
		w.must(err, "AttachRolePolicy")
	}
	for pn, doc := range inline {
		_, err := w.iam.PutRolePolicy(w.ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)})
		w.must(err, "PutRolePolicy")
	}
	prof, err := w.iam.CreateInstanceProfile(w.ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)})
	w.must(err, "CreateInstanceProfile")
	_, err = w.iam.AddRoleToInstanceProfile(w.ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)})
	w.must(err, "AddRoleToInstanceProfile")
	return aws.ToString(prof.InstanceProfile.Arn)
}

// launch starts an instance in subnet (with a public IP when public).
func (w *world) launch(name, subnet string, public bool, profileARN string, sgs []string) string {
	in := &ec2.RunInstancesInput{ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}}}
	if public {
		in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet),
			AssociatePublicIpAddress: aws.Bool(true), Groups: sgs}}
	} else {
		in.SubnetId, in.SecurityGroupIds = aws.String(subnet), sgs
	}
	if profileARN != "" {
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profileARN)}
	}
	out, err := w.ec2.RunInstances(w.ctx, in)
	w.must(err, "RunInstances")
	return aws.ToString(out.Instances[0].InstanceId)
}

// register makes id a managed node whose agent is not connected, the way a
// real agent registers (UpdateInstanceInformation, which the SDK does not
// model).
func (w *world) register(id string) {
	body, _ := json.Marshal(map[string]string{"InstanceId": id, "AgentName": "amazon-ssm-agent", "AgentVersion": agent.DefaultAgentVersion,
		"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023"})
	req, _ := http.NewRequest(http.MethodPost, w.sb.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	sandboxtest.Sign(w.t, w.sb, req, body, "ssm")
	resp, err := http.DefaultClient.Do(req)
	w.must(err, "UpdateInstanceInformation")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		w.t.Fatalf("UpdateInstanceInformation: %s", resp.Status)
	}
}

// online runs an emulated agent for id until the test ends.
func (w *world) online(id string) {
	a := agent.New(agent.Config{InstanceID: id, Region: w.sb.Region(), Endpoint: w.sb.URL(), Credentials: w.sb.Credentials(), ReconnectDelay: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	w.t.Cleanup(func() { cancel(); _ = a.Close(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for !a.Connected() {
		if time.Now().After(deadline) {
			w.t.Fatalf("agent for %s did not connect", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isolatedVPC creates a VPC with DNS on, one subnet without any default
// route, and interface endpoints for ssm, ssmmessages and ec2messages whose
// security group allows ingressPort from the VPC.
func (w *world) isolatedVPC(cidr string, privateDNS bool, ingressPort int32) (subnet string, sgs []string) {
	vpc, err := w.ec2.CreateVpc(w.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	w.must(err, "CreateVpc")
	vpcID := vpc.Vpc.VpcId
	for _, in := range []*ec2.ModifyVpcAttributeInput{
		{VpcId: vpcID, EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
		{VpcId: vpcID, EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
	} {
		_, err := w.ec2.ModifyVpcAttribute(w.ctx, in)
		w.must(err, "ModifyVpcAttribute")
	}
	sub, err := w.ec2.CreateSubnet(w.ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String(strings.Replace(cidr, ".0.0/16", ".1.0/24", 1)),
		AvailabilityZone: aws.String(w.sb.Region() + "a")})
	w.must(err, "CreateSubnet")
	sg, err := w.ec2.CreateSecurityGroup(w.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("endpoints"), Description: aws.String("endpoints"), VpcId: vpcID})
	w.must(err, "CreateSecurityGroup")
	_, err = w.ec2.AuthorizeSecurityGroupIngress(w.ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(ingressPort), ToPort: aws.Int32(ingressPort),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}}})
	w.must(err, "AuthorizeSecurityGroupIngress")
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		_, err := w.ec2.CreateVpcEndpoint(w.ctx, &ec2.CreateVpcEndpointInput{VpcId: vpcID, VpcEndpointType: ec2types.VpcEndpointTypeInterface,
			ServiceName: aws.String("com.amazonaws." + w.sb.Region() + "." + svc), SubnetIds: []string{aws.ToString(sub.Subnet.SubnetId)},
			SecurityGroupIds: []string{aws.ToString(sg.GroupId)}, PrivateDnsEnabled: aws.Bool(privateDNS)})
		w.must(err, "CreateVpcEndpoint "+svc)
	}
	def, err := w.ec2.DescribeSecurityGroups(w.ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{aws.ToString(vpcID)}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	w.must(err, "DescribeSecurityGroups")
	return aws.ToString(sub.Subnet.SubnetId), []string{aws.ToString(def.SecurityGroups[0].GroupId)}
}

// prefsDocument creates a Session document with the given inputs.
func (w *world) prefsDocument(name string, inputs map[string]any) {
	content, _ := json.Marshal(map[string]any{"schemaVersion": "1.0", "description": "doctor test", "sessionType": "Standard_Stream", "inputs": inputs})
	_, err := w.ssm.CreateDocument(w.ctx, &ssm.CreateDocumentInput{Name: aws.String(name), Content: aws.String(string(content)),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson})
	w.must(err, "CreateDocument "+name)
}

func (w *world) doctor(id, document string) (doctor.InstanceReport, *awsapi.CallCounter) {
	w.t.Helper()
	var cc awsapi.CallCounter
	g := &doctor.Gatherer{Clients: doctor.NewClients(cc.Instrument(w.cfg)), Region: w.sb.Region(), Document: document}
	ctx, cancel := context.WithTimeout(w.ctx, 60*time.Second)
	defer cancel()
	f, err := g.Gather(ctx, doctor.Selection{Targets: []string{id}})
	w.must(err, "Gather")
	rep := doctor.Run(f, time.Now())
	if len(rep.Instances) != 1 {
		w.t.Fatalf("got %d reports", len(rep.Instances))
	}
	return rep.Instances[0], &cc
}

func failing(r doctor.InstanceReport) []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == doctor.Fail {
			out = append(out, c.ID)
		}
	}
	sort.Strings(out)
	return out
}

const loggingPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetEncryptionConfiguration",
"logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups","logs:DescribeLogStreams","kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}`

// equivalentPolicy grants the core actions through wildcards, with an
// unrelated explicit deny.
const equivalentPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["SSM:*","ssmmessages:*","ec2messages:*"],"Resource":"*"},
{"Effect":"Deny","Action":"ssm:Delete*","Resource":"*"}]}`

func TestSandboxScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	w := newWorld(t, []sandbox.InstanceSpec{
		{Name: "healthy"},
		{Name: "offline", Offline: true},
		{Name: "old", AgentVersion: "2.3.50.0"},
		{Name: "norole", NoRole: true},
		{Name: "isolated", Isolated: true},
	})
	public := w.byName("healthy").SubnetID
	pubSG, err := w.ec2.DescribeInstances(w.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{w.byName("healthy").ID}})
	w.must(err, "DescribeInstances")
	sandboxSGs := []string{}
	for _, g := range pubSG.Reservations[0].Instances[0].SecurityGroups {
		sandboxSGs = append(sandboxSGs, aws.ToString(g.GroupId))
	}
	sandboxProfile := aws.ToString(pubSG.Reservations[0].Instances[0].IamInstanceProfile.Arn)

	type scenario struct {
		name     string
		setup    func() (id, document string)
		wantFail []string
	}
	byName := func(n string) func() (string, string) {
		return func() (string, string) { return w.byName(n).ID, "" }
	}
	loggingRole := ""
	loggingInstance := func(name string) string {
		if loggingRole == "" {
			loggingRole = w.role("doctor-logging", []string{fleet.CorePolicyARN}, map[string]string{"logging": loggingPolicy})
		}
		id := w.launch(name, public, true, loggingRole, sandboxSGs)
		w.online(id)
		return id
	}
	scenarios := []scenario{
		{name: "healthy", setup: byName("healthy")},
		{name: "agent offline", setup: byName("offline"), wantFail: []string{"agent.online"}},
		{name: "agent too old", setup: byName("old"), wantFail: []string{"agent.version"}},
		{name: "no instance profile", setup: byName("norole"), wantFail: []string{"agent.online", "identity.profile"}},
		{name: "role without the core policy", setup: func() (string, string) {
			id := w.launch("nocore", public, true, w.role("doctor-nocore", nil, nil), sandboxSGs)
			w.register(id)
			return id, ""
		}, wantFail: []string{"agent.online", "identity.core-policy"}},
		{name: "role with an equivalent inline policy", setup: func() (string, string) {
			id := w.launch("inline", public, true, w.role("doctor-inline", nil, map[string]string{"core": equivalentPolicy}), sandboxSGs)
			w.online(id)
			return id, ""
		}},
		{name: "private subnet without NAT or endpoints", setup: byName("isolated"), wantFail: []string{"agent.online", "network.route"}},
		{name: "endpoints without private DNS", setup: func() (string, string) {
			sub, sgs := w.isolatedVPC("10.51.0.0/16", false, 443)
			id := w.launch("nodns", sub, false, sandboxProfile, sgs)
			w.register(id)
			return id, ""
		}, wantFail: []string{"agent.online", "network.endpoints.private-dns"}},
		{name: "endpoint security group without 443", setup: func() (string, string) {
			sub, sgs := w.isolatedVPC("10.52.0.0/16", true, 22)
			id := w.launch("no443", sub, false, sandboxProfile, sgs)
			w.register(id)
			return id, ""
		}, wantFail: []string{"agent.online", "network.endpoint-sg-443"}},
		{name: "logging bucket missing", setup: func() (string, string) {
			w.prefsDocument("Doctor-NoBucket", map[string]any{"s3BucketName": "ssmkit-doctor-missing-bucket", "s3EncryptionEnabled": false})
			return loggingInstance("nobucket"), "Doctor-NoBucket"
		}, wantFail: []string{"logging.s3-bucket"}},
		{name: "log group unencrypted while encryption is required", setup: func() (string, string) {
			_, err := cloudwatchlogs.NewFromConfig(w.cfg).CreateLogGroup(w.ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("doctor-plain")})
			w.must(err, "CreateLogGroup")
			w.prefsDocument("Doctor-PlainLogs", map[string]any{"cloudWatchLogGroupName": "doctor-plain", "cloudWatchEncryptionEnabled": true})
			return loggingInstance("plainlogs"), "Doctor-PlainLogs"
		}, wantFail: []string{"logging.cw-encryption"}},
		{name: "KMS key disabled", setup: func() (string, string) {
			kc := kms.NewFromConfig(w.cfg)
			key, err := kc.CreateKey(w.ctx, &kms.CreateKeyInput{Description: aws.String("doctor")})
			w.must(err, "CreateKey")
			_, err = kc.DisableKey(w.ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId})
			w.must(err, "DisableKey")
			w.prefsDocument("Doctor-DisabledKey", map[string]any{"kmsKeyId": aws.ToString(key.KeyMetadata.Arn)})
			return loggingInstance("disabledkey"), "Doctor-DisabledKey"
		}, wantFail: []string{"kms.key-enabled"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			id, doc := sc.setup()
			rep, cc := w.doctor(id, doc)
			got := failing(rep)
			want := append([]string(nil), sc.wantFail...)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("failing checks = %v, want %v", got, want)
				for _, c := range rep.Checks {
					t.Logf("  %-38s %-4s %s %v", c.ID, c.Status, c.Summary, c.Evidence)
				}
			}
			if len(rep.Checks) != len(doctor.CheckIDs) {
				t.Errorf("%d checks, want %d", len(rep.Checks), len(doctor.CheckIDs))
			}
			for _, c := range rep.Checks {
				if c.Status == doctor.Fail && c.Fix == "" {
					t.Errorf("%s fails without a fix", c.ID)
				}
				if c.Status == doctor.Skip && c.Summary == "" {
					t.Errorf("%s skipped without a reason", c.ID)
				}
			}
			t.Logf("%d API calls", cc.Total())
		})
	}
	// The caller check cannot use SimulatePrincipalPolicy in moto (HTTP
	// 500) nor read moto's caller (no such user): it must say so.
	rep, _ := w.doctor(w.byName("healthy").ID, "")
	for _, c := range rep.Checks {
		if c.ID == "caller.start-session" && (c.Status != doctor.Skip || !strings.Contains(c.Summary, "SimulatePrincipalPolicy")) {
			t.Errorf("caller.start-session = %s %q", c.Status, c.Summary)
		}
	}
	_ = fmt.Sprint
}
