// Package fleet builds the sandbox's managed instances as real resources in
// the AWS emulator (moto): a VPC with a public subnet (internet gateway
// route) and an isolated private subnet (no NAT, no endpoints), an instance
// role with AmazonSSMManagedInstanceCore and its instance profile, and EC2
// instances with tags. The doctor then finds healthy and broken instances
// through the same APIs it uses against a real account.
package fleet

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// Names of what the sandbox creates.
const (
	NameTag          = "ssmkit-sandbox"
	RoleName         = "ssmkit-sandbox-instance"
	ProfileName      = "ssmkit-sandbox-instance"
	CorePolicyARN    = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	DefaultImageID   = "ami-12c6146b" // one of moto's built-in images
	DefaultType      = "t3.micro"
	vpcCIDR          = "10.42.0.0/16"
	publicCIDR       = "10.42.1.0/24"
	privateCIDR      = "10.42.2.0/24"
	ec2TrustDocument = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	// HybridRoleName is the service role of the sandbox's hybrid
	// activations: trusted by ssm.amazonaws.com, with the core policy.
	HybridRoleName      = "ssmkit-sandbox-hybrid"
	ssmTrustDocument    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	hybridRoleDescribed = "ssmkit sandbox hybrid (on-premises) managed nodes"
)

// Network is the sandbox VPC.
type Network struct {
	VpcID            string
	PublicSubnetID   string // default route through an internet gateway
	PrivateSubnetID  string // no default route, no endpoints
	InternetGateway  string
	SecurityGroupID  string // egress to anywhere (the default)
	AvailabilityZone string
}

// Spec describes one instance to launch.
type Spec struct {
	Name string
	// NoRole launches without an instance profile.
	NoRole bool
	// Isolated puts the instance in the private subnet that has neither a
	// NAT route nor VPC endpoints.
	Isolated bool
	Tags     map[string]string
}

// Instance is a launched instance.
type Instance struct {
	ID               string
	Name             string
	PrivateIP        string
	PublicIP         string
	SubnetID         string
	VpcID            string
	AvailabilityZone string
	Spec             Spec
}

// EC2API is the part of the EC2 client fleet uses.
type EC2API interface {
	CreateVpc(context.Context, *ec2.CreateVpcInput, ...func(*ec2.Options)) (*ec2.CreateVpcOutput, error)
	ModifyVpcAttribute(context.Context, *ec2.ModifyVpcAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyVpcAttributeOutput, error)
	CreateSubnet(context.Context, *ec2.CreateSubnetInput, ...func(*ec2.Options)) (*ec2.CreateSubnetOutput, error)
	CreateInternetGateway(context.Context, *ec2.CreateInternetGatewayInput, ...func(*ec2.Options)) (*ec2.CreateInternetGatewayOutput, error)
	AttachInternetGateway(context.Context, *ec2.AttachInternetGatewayInput, ...func(*ec2.Options)) (*ec2.AttachInternetGatewayOutput, error)
	CreateRouteTable(context.Context, *ec2.CreateRouteTableInput, ...func(*ec2.Options)) (*ec2.CreateRouteTableOutput, error)
	CreateRoute(context.Context, *ec2.CreateRouteInput, ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	AssociateRouteTable(context.Context, *ec2.AssociateRouteTableInput, ...func(*ec2.Options)) (*ec2.AssociateRouteTableOutput, error)
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeInternetGateways(context.Context, *ec2.DescribeInternetGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
}

// IAMAPI is the part of the IAM client fleet uses.
type IAMAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	AttachRolePolicy(context.Context, *iam.AttachRolePolicyInput, ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
}

func nameTags(rt ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String(name)},
		{Key: aws.String("ssmkit:sandbox"), Value: aws.String("true")},
	}}}
}

// EnsureNetwork returns the sandbox VPC, creating it on first use.
func EnsureNetwork(ctx context.Context, api EC2API, region string) (Network, error) {
	var n Network
	vpcs, err := api.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{NameTag}}}})
	if err != nil {
		return n, fmt.Errorf("looking up the sandbox vpc: %w", err)
	}
	if len(vpcs.Vpcs) > 0 {
		return describeNetwork(ctx, api, aws.ToString(vpcs.Vpcs[0].VpcId))
	}
	n.AvailabilityZone = region + "a"
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(vpcCIDR), TagSpecifications: nameTags(ec2types.ResourceTypeVpc, NameTag)})
	if err != nil {
		return n, fmt.Errorf("creating the sandbox vpc: %w", err)
	}
	n.VpcID = aws.ToString(vpc.Vpc.VpcId)
	for _, attr := range []*ec2.ModifyVpcAttributeInput{
		{VpcId: vpc.Vpc.VpcId, EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
		{VpcId: vpc.Vpc.VpcId, EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
	} {
		if _, err := api.ModifyVpcAttribute(ctx, attr); err != nil {
			return n, fmt.Errorf("enabling dns on %s: %w", n.VpcID, err)
		}
	}
	pub, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(publicCIDR),
		AvailabilityZone: aws.String(n.AvailabilityZone), TagSpecifications: nameTags(ec2types.ResourceTypeSubnet, NameTag+"-public")})
	if err != nil {
		return n, fmt.Errorf("creating the public subnet: %w", err)
	}
	n.PublicSubnetID = aws.ToString(pub.Subnet.SubnetId)
	priv, err := api.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(privateCIDR),
		AvailabilityZone: aws.String(n.AvailabilityZone), TagSpecifications: nameTags(ec2types.ResourceTypeSubnet, NameTag+"-isolated")})
	if err != nil {
		return n, fmt.Errorf("creating the isolated subnet: %w", err)
	}
	n.PrivateSubnetID = aws.ToString(priv.Subnet.SubnetId)
	igw, err := api.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{TagSpecifications: nameTags(ec2types.ResourceTypeInternetGateway, NameTag)})
	if err != nil {
		return n, fmt.Errorf("creating the internet gateway: %w", err)
	}
	n.InternetGateway = aws.ToString(igw.InternetGateway.InternetGatewayId)
	if _, err := api.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpc.Vpc.VpcId}); err != nil &&
		!attachedTo(ctx, api, err, n.InternetGateway, aws.ToString(vpc.Vpc.VpcId)) {
		return n, fmt.Errorf("attaching the internet gateway: %w", err)
	}
	// The public subnet gets its own route table with a default route;
	// the isolated one gets a table with only the local route.
	for _, sub := range []struct {
		id, name string
		public   bool
	}{{n.PublicSubnetID, NameTag + "-public", true}, {n.PrivateSubnetID, NameTag + "-isolated", false}} {
		rt, err := api.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: vpc.Vpc.VpcId, TagSpecifications: nameTags(ec2types.ResourceTypeRouteTable, sub.name)})
		if err != nil {
			return n, fmt.Errorf("creating route table %s: %w", sub.name, err)
		}
		if sub.public {
			if _, err := api.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId,
				DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId}); err != nil && !hasCode(err, "RouteAlreadyExists") {
				return n, fmt.Errorf("adding the default route: %w", err)
			}
		}
		if _, err := api.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: aws.String(sub.id)}); err != nil {
			return n, fmt.Errorf("associating route table %s: %w", sub.name, err)
		}
	}
	sg, err := defaultSecurityGroup(ctx, api, n.VpcID)
	if err != nil {
		return n, err
	}
	n.SecurityGroupID = sg
	return n, nil
}

func defaultSecurityGroup(ctx context.Context, api EC2API, vpcID string) (string, error) {
	sgs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	if err != nil {
		return "", fmt.Errorf("looking up the default security group of %s: %w", vpcID, err)
	}
	if len(sgs.SecurityGroups) == 0 {
		return "", fmt.Errorf("vpc %s has no default security group", vpcID)
	}
	return aws.ToString(sgs.SecurityGroups[0].GroupId), nil
}

// describeNetwork finds the parts of an existing sandbox VPC by their tags.
func describeNetwork(ctx context.Context, api EC2API, vpcID string) (Network, error) {
	n := Network{VpcID: vpcID}
	subs, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return n, fmt.Errorf("looking up the sandbox subnets: %w", err)
	}
	for _, s := range subs.Subnets {
		for _, t := range s.Tags {
			if aws.ToString(t.Key) != "Name" {
				continue
			}
			switch aws.ToString(t.Value) {
			case NameTag + "-public":
				n.PublicSubnetID = aws.ToString(s.SubnetId)
				n.AvailabilityZone = aws.ToString(s.AvailabilityZone)
			case NameTag + "-isolated":
				n.PrivateSubnetID = aws.ToString(s.SubnetId)
			}
		}
	}
	if n.PublicSubnetID == "" || n.PrivateSubnetID == "" {
		return n, fmt.Errorf("sandbox vpc %s is missing its subnets", vpcID)
	}
	igws, err := api.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return n, fmt.Errorf("looking up the internet gateway: %w", err)
	}
	if len(igws.InternetGateways) > 0 {
		n.InternetGateway = aws.ToString(igws.InternetGateways[0].InternetGatewayId)
	}
	n.SecurityGroupID, err = defaultSecurityGroup(ctx, api, vpcID)
	return n, err
}

// hasCode reports whether err is the AWS error code. The sandbox's set-up creates each resource
// once, in a fresh account, so "already exists" answers a create whose first answer was lost and
// that the SDK retried: the resource is there, as asked. (At sandbox start on a loaded machine
// the SDK itself used to lose the answers of moto's quick replies; the sandbox's clients now use
// awsapi.HTTPClient, which keeps them. An answer lost on the network is still retried.)
func hasCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// attachedTo reports whether err is AttachInternetGateway's Resource.AlreadyAssociated for a
// gateway that is in fact attached to vpcID: what an SDK retry of a call whose first answer was
// lost gets. The attachment is then done, as asked.
func attachedTo(ctx context.Context, api EC2API, err error, igwID, vpcID string) bool {
	if !hasCode(err, "Resource.AlreadyAssociated") {
		return false
	}
	out, derr := api.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{InternetGatewayIds: []string{igwID}})
	if derr != nil || len(out.InternetGateways) != 1 {
		return false
	}
	for _, a := range out.InternetGateways[0].Attachments {
		if aws.ToString(a.VpcId) == vpcID {
			return true
		}
	}
	return false
}

// ensureRole creates a role with trust and the core policy unless it
// exists.
func ensureRole(ctx context.Context, api IAMAPI, name, trust, description string) error {
	if _, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)}); err != nil {
		var nf *iamtypes.NoSuchEntityException
		if !errors.As(err, &nf) {
			return fmt.Errorf("looking up role %s: %w", name, err)
		}
		if _, err := api.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name),
			AssumeRolePolicyDocument: aws.String(trust), Description: aws.String(description)}); err != nil && !hasCode(err, "EntityAlreadyExists") {
			return fmt.Errorf("creating role %s: %w", name, err)
		}
		if _, err := api.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(CorePolicyARN)}); err != nil {
			return fmt.Errorf("attaching %s to %s (is moto running with MOTO_IAM_LOAD_MANAGED_POLICIES=true?): %w", CorePolicyARN, name, err)
		}
	}
	return nil
}

// EnsureHybridRole creates the service role of hybrid activations (trusted
// by ssm.amazonaws.com, with AmazonSSMManagedInstanceCore) on first use and
// returns its name.
func EnsureHybridRole(ctx context.Context, api IAMAPI) (string, error) {
	return HybridRoleName, ensureRole(ctx, api, HybridRoleName, ssmTrustDocument, hybridRoleDescribed)
}

// EnsureInstanceProfile returns the sandbox instance profile, creating the
// role (trusted by ec2.amazonaws.com, with AmazonSSMManagedInstanceCore)
// and the profile on first use.
func EnsureInstanceProfile(ctx context.Context, api IAMAPI) (string, error) {
	if err := ensureRole(ctx, api, RoleName, ec2TrustDocument, "ssmkit sandbox managed instances"); err != nil {
		return "", err
	}
	prof, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(ProfileName)})
	if err == nil {
		return aws.ToString(prof.InstanceProfile.Arn), nil
	}
	var nf *iamtypes.NoSuchEntityException
	if !errors.As(err, &nf) {
		return "", fmt.Errorf("looking up instance profile %s: %w", ProfileName, err)
	}
	if _, err := api.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(ProfileName)}); err != nil &&
		!hasCode(err, "EntityAlreadyExists") {
		return "", fmt.Errorf("creating instance profile %s: %w", ProfileName, err)
	}
	if _, err := api.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(ProfileName), RoleName: aws.String(RoleName)}); err != nil &&
		!hasCode(err, "LimitExceeded") { // the profile already has its one role
		return "", fmt.Errorf("adding %s to %s: %w", RoleName, ProfileName, err)
	}
	prof, err = api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(ProfileName)})
	if err != nil {
		return "", fmt.Errorf("looking up instance profile %s: %w", ProfileName, err)
	}
	if len(prof.InstanceProfile.Roles) != 1 || aws.ToString(prof.InstanceProfile.Roles[0].RoleName) != RoleName {
		return "", fmt.Errorf("instance profile %s does not hold role %s", ProfileName, RoleName)
	}
	return aws.ToString(prof.InstanceProfile.Arn), nil
}

// Launch starts one EC2 instance per spec in the sandbox network.
func Launch(ctx context.Context, api EC2API, n Network, profileARN string, specs []Spec) ([]Instance, error) {
	out := make([]Instance, 0, len(specs))
	for _, s := range specs {
		subnet := n.PublicSubnetID
		if s.Isolated {
			subnet = n.PrivateSubnetID
		}
		tags := []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(s.Name)}, {Key: aws.String("ssmkit:sandbox"), Value: aws.String("true")}}
		for k, v := range s.Tags {
			tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in := &ec2.RunInstancesInput{
			ImageId:      aws.String(DefaultImageID),
			InstanceType: ec2types.InstanceType(DefaultType),
			MinCount:     aws.Int32(1),
			MaxCount:     aws.Int32(1),
			SubnetId:     aws.String(subnet),
			MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
				HttpTokens: ec2types.HttpTokensStateRequired,
			},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
		}
		if !s.Isolated {
			in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), AssociatePublicIpAddress: aws.Bool(true)}}
			in.SubnetId = nil
		}
		if !s.NoRole && profileARN != "" {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profileARN)}
		}
		res, err := api.RunInstances(ctx, in)
		if err != nil {
			return out, fmt.Errorf("launching %s: %w", s.Name, err)
		}
		if len(res.Instances) != 1 {
			return out, fmt.Errorf("launching %s: got %d instances", s.Name, len(res.Instances))
		}
		i := res.Instances[0]
		inst := Instance{ID: aws.ToString(i.InstanceId), Name: s.Name, PrivateIP: aws.ToString(i.PrivateIpAddress),
			PublicIP: aws.ToString(i.PublicIpAddress), SubnetID: subnet, VpcID: n.VpcID, AvailabilityZone: n.AvailabilityZone, Spec: s}
		if i.Placement != nil && i.Placement.AvailabilityZone != nil {
			inst.AvailabilityZone = aws.ToString(i.Placement.AvailabilityZone)
		}
		out = append(out, inst)
	}
	return out, nil
}
