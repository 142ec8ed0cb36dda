package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// fakeAWS answers every API the Gatherer calls from a small, generated
// account: instances over vpcs VPCs and roles roles (the first instance
// has no profile, so default host management is read), preferences that
// name a bucket, a log group and a key, and an IAM user as the caller
// whose SimulatePrincipalPolicy is refused. Every call first goes through
// hook, which tests use to cancel the context at a chosen call.
type fakeAWS struct {
	instances, vpcs, roles int
	// pageSize is how many items a listing returns per page (1 forces
	// pagination everywhere).
	pageSize int

	mu    sync.Mutex
	calls map[string]int
	hook  func(ctx context.Context, op string, n int)
}

func (f *fakeAWS) call(ctx context.Context, op string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	n := f.calls[op]
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(ctx, op, n)
	}
	return ctx.Err()
}

func (f *fakeAWS) clients() Clients {
	return Clients{EC2: fakeEC2{f}, SSM: fakeSSM{f}, IAM: fakeIAM{f}, KMS: fakeKMS{f}, S3: fakeS3{f}, Logs: fakeLogs{f}, STS: fakeSTS{f}, Route53: fakeRoute53{f}}
}

func (f *fakeAWS) instanceID(i int) string { return fmt.Sprintf("i-%017x", i+1) }
func (f *fakeAWS) vpcID(v int) string      { return fmt.Sprintf("vpc-%d", v) }
func (f *fakeAWS) roleName(r int) string   { return fmt.Sprintf("role-%d", r) }

// page returns the items of page token (an index) and the next token.
func page[T any](items []T, token *string, size int) ([]T, *string) {
	if size <= 0 {
		size = 1000
	}
	start := 0
	if token != nil {
		fmt.Sscan(*token, &start)
	}
	end := min(start+size, len(items))
	var next *string
	if end < len(items) {
		next = aws.String(fmt.Sprint(end))
	}
	return items[start:end], next
}

const fakeAccount = "123456789012"

type fakeEC2 struct{ f *fakeAWS }

func (e fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeInstances"); err != nil {
		return nil, err
	}
	var insts []ec2types.Instance
	for i := range e.f.instances {
		v := i % e.f.vpcs
		inst := ec2types.Instance{InstanceId: aws.String(e.f.instanceID(i)), VpcId: aws.String(e.f.vpcID(v)), SubnetId: aws.String(fmt.Sprintf("subnet-%d", v)),
			State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}, PrivateIpAddress: aws.String(fmt.Sprintf("10.%d.1.%d", v, i%250+4)),
			SecurityGroups: []ec2types.GroupIdentifier{{GroupId: aws.String(fmt.Sprintf("sg-%d", v))}}}
		if i > 0 {
			inst.IamInstanceProfile = &ec2types.IamInstanceProfile{Arn: aws.String(fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", fakeAccount, e.f.roleName(i%e.f.roles)))}
		}
		insts = append(insts, inst)
	}
	items, next := page(insts, in.NextToken, e.f.pageSize)
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: items}}, NextToken: next}, nil
}

func (e fakeEC2) DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeVpcs"); err != nil {
		return nil, err
	}
	out := &ec2.DescribeVpcsOutput{}
	for _, id := range in.VpcIds {
		out.Vpcs = append(out.Vpcs, ec2types.Vpc{VpcId: aws.String(id), CidrBlock: aws.String("10.0.0.0/8")})
	}
	return out, nil
}

func (e fakeEC2) DescribeVpcAttribute(ctx context.Context, in *ec2.DescribeVpcAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcAttributeOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeVpcAttribute"); err != nil {
		return nil, err
	}
	on := &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}
	return &ec2.DescribeVpcAttributeOutput{VpcId: in.VpcId, EnableDnsSupport: on, EnableDnsHostnames: on}, nil
}

func (e fakeEC2) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	if len(in.SubnetIds) > 0 {
		if err := e.f.call(ctx, "EC2.DescribeSubnets#ids"); err != nil {
			return nil, err
		}
		return &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{{SubnetId: aws.String("subnet-hub"), VpcId: aws.String("vpc-hub"), CidrBlock: aws.String("10.200.1.0/24")}}}, nil
	}
	if err := e.f.call(ctx, "EC2.DescribeSubnets"); err != nil {
		return nil, err
	}
	var subs []ec2types.Subnet
	for v := range e.f.vpcs {
		subs = append(subs, ec2types.Subnet{SubnetId: aws.String(fmt.Sprintf("subnet-%d", v)), VpcId: aws.String(e.f.vpcID(v)),
			CidrBlock: aws.String(fmt.Sprintf("10.%d.1.0/24", v)), AvailabilityZone: aws.String("us-east-1a")})
	}
	items, next := page(subs, in.NextToken, e.f.pageSize)
	return &ec2.DescribeSubnetsOutput{Subnets: items, NextToken: next}, nil
}

func (e fakeEC2) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeRouteTables"); err != nil {
		return nil, err
	}
	var rts []ec2types.RouteTable
	for v := range e.f.vpcs {
		rts = append(rts, ec2types.RouteTable{RouteTableId: aws.String(fmt.Sprintf("rtb-%d", v)), VpcId: aws.String(e.f.vpcID(v)),
			Associations: []ec2types.RouteTableAssociation{{Main: aws.Bool(true)}},
			Routes:       []ec2types.Route{{DestinationCidrBlock: aws.String("0.0.0.0/0"), NatGatewayId: aws.String(fmt.Sprintf("nat-%d", v)), State: ec2types.RouteStateActive}}})
	}
	items, next := page(rts, in.NextToken, e.f.pageSize)
	return &ec2.DescribeRouteTablesOutput{RouteTables: items, NextToken: next}, nil
}

func (e fakeEC2) DescribeVpcEndpoints(ctx context.Context, in *ec2.DescribeVpcEndpointsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error) {
	if len(in.VpcEndpointIds) > 0 {
		// The hub endpoint a private hosted zone points at.
		if err := e.f.call(ctx, "EC2.DescribeVpcEndpoints#ids"); err != nil {
			return nil, err
		}
		return &ec2.DescribeVpcEndpointsOutput{VpcEndpoints: []ec2types.VpcEndpoint{{VpcEndpointId: aws.String(fakeHubEndpoint), VpcId: aws.String("vpc-hub"),
			ServiceName: aws.String("com.amazonaws.us-east-1.ssm"), VpcEndpointType: ec2types.VpcEndpointTypeInterface, State: ec2types.StateAvailable,
			SubnetIds: []string{"subnet-hub"}, Groups: []ec2types.SecurityGroupIdentifier{{GroupId: aws.String("sg-hub")}}}}}, nil
	}
	if err := e.f.call(ctx, "EC2.DescribeVpcEndpoints"); err != nil {
		return nil, err
	}
	return &ec2.DescribeVpcEndpointsOutput{}, nil
}

const fakeHubEndpoint = "vpce-0123456789abcdef0"

// fakeHybridNode is the fake account's hybrid managed node.
const fakeHybridNode = "mi-00000000000000001"

func (e fakeEC2) DescribeNatGateways(ctx context.Context, in *ec2.DescribeNatGatewaysInput, _ ...func(*ec2.Options)) (*ec2.DescribeNatGatewaysOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeNatGateways"); err != nil {
		return nil, err
	}
	var nats []ec2types.NatGateway
	for v := range e.f.vpcs {
		nats = append(nats, ec2types.NatGateway{NatGatewayId: aws.String(fmt.Sprintf("nat-%d", v)), VpcId: aws.String(e.f.vpcID(v)),
			SubnetId: aws.String(fmt.Sprintf("subnet-%d", v)), State: ec2types.NatGatewayStateAvailable})
	}
	items, next := page(nats, in.NextToken, e.f.pageSize)
	return &ec2.DescribeNatGatewaysOutput{NatGateways: items, NextToken: next}, nil
}

func (e fakeEC2) DescribeInternetGateways(ctx context.Context, in *ec2.DescribeInternetGatewaysInput, _ ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeInternetGateways"); err != nil {
		return nil, err
	}
	var igws []ec2types.InternetGateway
	for v := range e.f.vpcs {
		igws = append(igws, ec2types.InternetGateway{InternetGatewayId: aws.String(fmt.Sprintf("igw-%d", v)),
			Attachments: []ec2types.InternetGatewayAttachment{{VpcId: aws.String(e.f.vpcID(v))}}})
	}
	items, next := page(igws, in.NextToken, e.f.pageSize)
	return &ec2.DescribeInternetGatewaysOutput{InternetGateways: items, NextToken: next}, nil
}

func (e fakeEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	if len(in.GroupIds) > 0 {
		if err := e.f.call(ctx, "EC2.DescribeSecurityGroups#ids"); err != nil {
			return nil, err
		}
		return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{{GroupId: aws.String("sg-hub"), VpcId: aws.String("vpc-hub")}}}, nil
	}
	if err := e.f.call(ctx, "EC2.DescribeSecurityGroups"); err != nil {
		return nil, err
	}
	var sgs []ec2types.SecurityGroup
	for v := range e.f.vpcs {
		sgs = append(sgs, ec2types.SecurityGroup{GroupId: aws.String(fmt.Sprintf("sg-%d", v)), VpcId: aws.String(e.f.vpcID(v)),
			IpPermissionsEgress: []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	}
	items, next := page(sgs, in.NextToken, e.f.pageSize)
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: items, NextToken: next}, nil
}

func (e fakeEC2) DescribeNetworkAcls(ctx context.Context, in *ec2.DescribeNetworkAclsInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	if err := e.f.call(ctx, "EC2.DescribeNetworkAcls"); err != nil {
		return nil, err
	}
	var acls []ec2types.NetworkAcl
	for v := range e.f.vpcs {
		all := func(egress bool) ec2types.NetworkAclEntry {
			return ec2types.NetworkAclEntry{RuleNumber: aws.Int32(100), Egress: aws.Bool(egress), Protocol: aws.String("-1"),
				CidrBlock: aws.String("0.0.0.0/0"), RuleAction: ec2types.RuleActionAllow}
		}
		acls = append(acls, ec2types.NetworkAcl{NetworkAclId: aws.String(fmt.Sprintf("acl-%d", v)), VpcId: aws.String(e.f.vpcID(v)), IsDefault: aws.Bool(true),
			Entries: []ec2types.NetworkAclEntry{all(true), all(false)}})
	}
	items, next := page(acls, in.NextToken, e.f.pageSize)
	return &ec2.DescribeNetworkAclsOutput{NetworkAcls: items, NextToken: next}, nil
}

type fakeSSM struct{ f *fakeAWS }

func (s fakeSSM) DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	if err := s.f.call(ctx, "SSM.DescribeInstanceInformation"); err != nil {
		return nil, err
	}
	var infos []ssmtypes.InstanceInformation
	info := func(id string) ssmtypes.InstanceInformation {
		ii := ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline, AgentVersion: aws.String("3.3.1142.0")}
		if strings.HasPrefix(id, "mi-") {
			ii.ResourceType, ii.IamRole = ssmtypes.ResourceTypeManagedInstance, aws.String("hybrid-role")
		}
		return ii
	}
	for _, flt := range in.Filters {
		switch aws.ToString(flt.Key) {
		case "InstanceIds":
			for _, id := range flt.Values {
				infos = append(infos, info(id))
			}
		case "ResourceType":
			// The account's one hybrid node.
			infos = append(infos, info(fakeHybridNode))
		}
	}
	items, next := page(infos, in.NextToken, s.f.pageSize)
	return &ssm.DescribeInstanceInformationOutput{InstanceInformationList: items, NextToken: next}, nil
}

func (s fakeSSM) GetDocument(ctx context.Context, in *ssm.GetDocumentInput, _ ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error) {
	if err := s.f.call(ctx, "SSM.GetDocument"); err != nil {
		return nil, err
	}
	return &ssm.GetDocumentOutput{Name: in.Name, Content: aws.String(`{"schemaVersion":"1.0","sessionType":"Standard_Stream","inputs":{
		"s3BucketName":"logs-bucket","cloudWatchLogGroupName":"/ssm/sessions","kmsKeyId":"alias/ssm"}}`)}, nil
}

func (s fakeSSM) GetServiceSetting(ctx context.Context, in *ssm.GetServiceSettingInput, _ ...func(*ssm.Options)) (*ssm.GetServiceSettingOutput, error) {
	if err := s.f.call(ctx, "SSM.GetServiceSetting"); err != nil {
		return nil, err
	}
	return &ssm.GetServiceSettingOutput{ServiceSetting: &ssmtypes.ServiceSetting{SettingId: in.SettingId, SettingValue: aws.String("service-role/dhm")}}, nil
}

type fakeIAM struct{ f *fakeAWS }

const fakeTrust = `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func (i fakeIAM) GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	if err := i.f.call(ctx, "IAM.GetInstanceProfile"); err != nil {
		return nil, err
	}
	name := aws.ToString(in.InstanceProfileName)
	return &iam.GetInstanceProfileOutput{InstanceProfile: &iamtypes.InstanceProfile{InstanceProfileName: in.InstanceProfileName,
		Roles: []iamtypes.Role{{RoleName: aws.String(name), Arn: aws.String("arn:aws:iam::" + fakeAccount + ":role/" + name), AssumeRolePolicyDocument: aws.String(fakeTrust)}}}}, nil
}

func (i fakeIAM) GetRole(ctx context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	if err := i.f.call(ctx, "IAM.GetRole"); err != nil {
		return nil, err
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, Arn: aws.String("arn:aws:iam::" + fakeAccount + ":role/" + aws.ToString(in.RoleName)),
		AssumeRolePolicyDocument: aws.String(fakeTrust)}}, nil
}

var fakeManaged = []string{CorePolicyARN, "arn:aws:iam::" + fakeAccount + ":policy/extra", "arn:aws:iam::" + fakeAccount + ":policy/roles-only"}

func (i fakeIAM) ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListAttachedRolePolicies"); err != nil {
		return nil, err
	}
	var aps []iamtypes.AttachedPolicy
	for _, a := range fakeManaged {
		aps = append(aps, iamtypes.AttachedPolicy{PolicyArn: aws.String(a)})
	}
	items, next := page(aps, in.Marker, i.f.pageSize)
	return &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListRolePolicies"); err != nil {
		return nil, err
	}
	items, next := page([]string{"inline-a", "inline-b"}, in.Marker, i.f.pageSize)
	return &iam.ListRolePoliciesOutput{PolicyNames: items, Marker: next, IsTruncated: next != nil}, nil
}

const fakeAllow = `{"Statement":[{"Effect":"Allow","Action":["ssm:*","ssmmessages:*","ec2messages:*"],"Resource":"*"}]}`

func (i fakeIAM) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	if err := i.f.call(ctx, "IAM.GetRolePolicy"); err != nil {
		return nil, err
	}
	return &iam.GetRolePolicyOutput{PolicyName: in.PolicyName, PolicyDocument: aws.String(fakeAllow)}, nil
}

func (i fakeIAM) GetPolicy(ctx context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	if err := i.f.call(ctx, "IAM.GetPolicy"); err != nil {
		return nil, err
	}
	return &iam.GetPolicyOutput{Policy: &iamtypes.Policy{Arn: in.PolicyArn, DefaultVersionId: aws.String("v1")}}, nil
}

func (i fakeIAM) GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, _ ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	if err := i.f.call(ctx, "IAM.GetPolicyVersion"); err != nil {
		return nil, err
	}
	return &iam.GetPolicyVersionOutput{PolicyVersion: &iamtypes.PolicyVersion{Document: aws.String(fakeAllow)}}, nil
}

var errFakeUnsupported = errors.New("not implemented")

func (i fakeIAM) SimulatePrincipalPolicy(ctx context.Context, _ *iam.SimulatePrincipalPolicyInput, _ ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	if err := i.f.call(ctx, "IAM.SimulatePrincipalPolicy"); err != nil {
		return nil, err
	}
	return nil, errFakeUnsupported
}

func (i fakeIAM) ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListAttachedUserPolicies"); err != nil {
		return nil, err
	}
	items, next := page([]iamtypes.AttachedPolicy{{PolicyArn: aws.String(fakeManaged[1])}}, in.Marker, i.f.pageSize)
	return &iam.ListAttachedUserPoliciesOutput{AttachedPolicies: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListUserPolicies"); err != nil {
		return nil, err
	}
	items, next := page([]string{"user-inline"}, in.Marker, i.f.pageSize)
	return &iam.ListUserPoliciesOutput{PolicyNames: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, _ ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	if err := i.f.call(ctx, "IAM.GetUserPolicy"); err != nil {
		return nil, err
	}
	return &iam.GetUserPolicyOutput{PolicyName: in.PolicyName, PolicyDocument: aws.String(fakeAllow)}, nil
}

func (i fakeIAM) ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, _ ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	if err := i.f.call(ctx, "IAM.ListGroupsForUser"); err != nil {
		return nil, err
	}
	items, next := page([]iamtypes.Group{{GroupName: aws.String("operators")}, {GroupName: aws.String("everyone")}}, in.Marker, i.f.pageSize)
	return &iam.ListGroupsForUserOutput{Groups: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) ListAttachedGroupPolicies(ctx context.Context, in *iam.ListAttachedGroupPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListAttachedGroupPolicies"); err != nil {
		return nil, err
	}
	items, next := page([]iamtypes.AttachedPolicy{{PolicyArn: aws.String(fakeManaged[1])}}, in.Marker, i.f.pageSize)
	return &iam.ListAttachedGroupPoliciesOutput{AttachedPolicies: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) ListGroupPolicies(ctx context.Context, in *iam.ListGroupPoliciesInput, _ ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error) {
	if err := i.f.call(ctx, "IAM.ListGroupPolicies"); err != nil {
		return nil, err
	}
	items, next := page([]string{"group-inline-a", "group-inline-b"}, in.Marker, i.f.pageSize)
	return &iam.ListGroupPoliciesOutput{PolicyNames: items, Marker: next, IsTruncated: next != nil}, nil
}

func (i fakeIAM) GetGroupPolicy(ctx context.Context, in *iam.GetGroupPolicyInput, _ ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error) {
	if err := i.f.call(ctx, "IAM.GetGroupPolicy"); err != nil {
		return nil, err
	}
	return &iam.GetGroupPolicyOutput{PolicyName: in.PolicyName, PolicyDocument: aws.String(fakeAllow)}, nil
}

type fakeKMS struct{ f *fakeAWS }

func (k fakeKMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if err := k.f.call(ctx, "KMS.DescribeKey"); err != nil {
		return nil, err
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String("k-1"), Arn: aws.String("arn:aws:kms:us-east-1:" + fakeAccount + ":key/k-1"),
		Enabled: true, KeyState: kmstypes.KeyStateEnabled}}, nil
}

func (k fakeKMS) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, _ ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	if err := k.f.call(ctx, "KMS.GetKeyPolicy"); err != nil {
		return nil, err
	}
	return &kms.GetKeyPolicyOutput{Policy: aws.String(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + fakeAccount + `:root"},"Action":"kms:*","Resource":"*"}]}`)}, nil
}

type fakeS3 struct{ f *fakeAWS }

func (b fakeS3) HeadBucket(ctx context.Context, in *s3.HeadBucketInput, _ ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	if err := b.f.call(ctx, "S3.HeadBucket"); err != nil {
		return nil, err
	}
	return &s3.HeadBucketOutput{}, nil
}

func (b fakeS3) GetBucketEncryption(ctx context.Context, in *s3.GetBucketEncryptionInput, _ ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error) {
	if err := b.f.call(ctx, "S3.GetBucketEncryption"); err != nil {
		return nil, err
	}
	return &s3.GetBucketEncryptionOutput{}, nil
}

type fakeLogs struct{ f *fakeAWS }

func (l fakeLogs) DescribeLogGroups(ctx context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	if err := l.f.call(ctx, "Logs.DescribeLogGroups"); err != nil {
		return nil, err
	}
	return &cloudwatchlogs.DescribeLogGroupsOutput{LogGroups: []logstypes.LogGroup{{LogGroupName: in.LogGroupNamePrefix}}}, nil
}

type fakeSTS struct{ f *fakeAWS }

func (s fakeSTS) GetCallerIdentity(ctx context.Context, _ *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	if err := s.f.call(ctx, "STS.GetCallerIdentity"); err != nil {
		return nil, err
	}
	return &sts.GetCallerIdentityOutput{Account: aws.String(fakeAccount), Arn: aws.String("arn:aws:iam::" + fakeAccount + ":user/alice"), UserId: aws.String("AIDAALICE")}, nil
}

type fakeRoute53 struct{ f *fakeAWS }

// ListHostedZonesByVPC: every VPC is associated with one zone for the ssm
// service name, which points at an endpoint in a hub VPC.
func (r fakeRoute53) ListHostedZonesByVPC(ctx context.Context, in *route53.ListHostedZonesByVPCInput, _ ...func(*route53.Options)) (*route53.ListHostedZonesByVPCOutput, error) {
	if err := r.f.call(ctx, "Route53.ListHostedZonesByVPC"); err != nil {
		return nil, err
	}
	return &route53.ListHostedZonesByVPCOutput{HostedZoneSummaries: []r53types.HostedZoneSummary{
		{HostedZoneId: aws.String("Z1"), Name: aws.String("ssm.us-east-1.amazonaws.com.")},
		{HostedZoneId: aws.String("Z2"), Name: aws.String("example.internal.")}}}, nil
}

func (r fakeRoute53) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, _ ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	if err := r.f.call(ctx, "Route53.ListResourceRecordSets"); err != nil {
		return nil, err
	}
	return &route53.ListResourceRecordSetsOutput{ResourceRecordSets: []r53types.ResourceRecordSet{{Name: aws.String("ssm.us-east-1.amazonaws.com."), Type: r53types.RRTypeA,
		AliasTarget: &r53types.AliasTarget{DNSName: aws.String(fakeHubEndpoint + "-abcdefgh.ssm.us-east-1.vpce.amazonaws.com")}}}}, nil
}
