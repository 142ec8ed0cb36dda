package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// FixEC2API is the part of EC2 that fixes change.
type FixEC2API interface {
	StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	CreateNetworkAclEntry(context.Context, *ec2.CreateNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error)
	ReplaceNetworkAclEntry(context.Context, *ec2.ReplaceNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.ReplaceNetworkAclEntryOutput, error)
	DeleteNetworkAclEntry(context.Context, *ec2.DeleteNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error)
	CreateRoute(context.Context, *ec2.CreateRouteInput, ...func(*ec2.Options)) (*ec2.CreateRouteOutput, error)
	ReplaceRoute(context.Context, *ec2.ReplaceRouteInput, ...func(*ec2.Options)) (*ec2.ReplaceRouteOutput, error)
	ModifyVpcAttribute(context.Context, *ec2.ModifyVpcAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyVpcAttributeOutput, error)
	ModifyVpcEndpoint(context.Context, *ec2.ModifyVpcEndpointInput, ...func(*ec2.Options)) (*ec2.ModifyVpcEndpointOutput, error)
	CreateVpcEndpoint(context.Context, *ec2.CreateVpcEndpointInput, ...func(*ec2.Options)) (*ec2.CreateVpcEndpointOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
	AssociateIamInstanceProfile(context.Context, *ec2.AssociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
	ModifyInstanceMetadataOptions(context.Context, *ec2.ModifyInstanceMetadataOptionsInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceMetadataOptionsOutput, error)
}

// FixIAMAPI is the part of IAM that fixes change.
type FixIAMAPI interface {
	AttachRolePolicy(context.Context, *iam.AttachRolePolicyInput, ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	DetachRolePolicy(context.Context, *iam.DetachRolePolicyInput, ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	UpdateAssumeRolePolicy(context.Context, *iam.UpdateAssumeRolePolicyInput, ...func(*iam.Options)) (*iam.UpdateAssumeRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	CreatePolicyVersion(context.Context, *iam.CreatePolicyVersionInput, ...func(*iam.Options)) (*iam.CreatePolicyVersionOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	PutUserPolicy(context.Context, *iam.PutUserPolicyInput, ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
}

// FixSSMAPI is the part of SSM that fixes change (and read, for prefs).
type FixSSMAPI interface {
	prefs.SSMAPI
	UpdateServiceSetting(context.Context, *ssm.UpdateServiceSettingInput, ...func(*ssm.Options)) (*ssm.UpdateServiceSettingOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
}

// FixS3API is the part of S3 that fixes change.
type FixS3API interface {
	CreateBucket(context.Context, *s3.CreateBucketInput, ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	PutBucketEncryption(context.Context, *s3.PutBucketEncryptionInput, ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
}

// FixLogsAPI is the part of CloudWatch Logs that fixes change.
type FixLogsAPI interface {
	CreateLogGroup(context.Context, *cloudwatchlogs.CreateLogGroupInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogGroupOutput, error)
	AssociateKmsKey(context.Context, *cloudwatchlogs.AssociateKmsKeyInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.AssociateKmsKeyOutput, error)
}

// FixKMSAPI is the part of KMS that fixes change.
type FixKMSAPI interface {
	EnableKey(context.Context, *kms.EnableKeyInput, ...func(*kms.Options)) (*kms.EnableKeyOutput, error)
	CancelKeyDeletion(context.Context, *kms.CancelKeyDeletionInput, ...func(*kms.Options)) (*kms.CancelKeyDeletionOutput, error)
	PutKeyPolicy(context.Context, *kms.PutKeyPolicyInput, ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

// Fixer runs fix command lines (Check.Commands) through the SDK: it
// splits the line, checks it is one of the commands the doctor prints,
// and makes the same API call the AWS CLI (or ssmkit) would. Nothing runs
// through a shell.
type Fixer struct {
	EC2  FixEC2API
	IAM  FixIAMAPI
	SSM  FixSSMAPI
	S3   FixS3API
	Logs FixLogsAPI
	KMS  FixKMSAPI
	// Region is where CreateBucket puts a bucket.
	Region string
}

// NewFixer builds a Fixer from an AWS configuration.
func NewFixer(cfg aws.Config) *Fixer {
	return &Fixer{EC2: awsapi.NewEC2(cfg), IAM: awsapi.NewIAM(cfg), SSM: awsapi.NewSSM(cfg), S3: awsapi.NewS3(cfg),
		Logs: awsapi.NewCloudWatchLogs(cfg), KMS: awsapi.NewKMS(cfg), Region: cfg.Region}
}

// ErrUnknownFix is returned for a command line the Fixer does not know;
// it runs only the commands the doctor prints.
var ErrUnknownFix = errors.New("not a fix the doctor prints")

// opts are a command's --options: values by name, "" for a flag.
type opts map[string][]string

func (o opts) str(name string) *string {
	if v := o[name]; len(v) > 0 {
		return aws.String(v[0])
	}
	return nil
}

func (o opts) has(name string) bool { _, ok := o[name]; return ok }

func (o opts) int32(name string) (*int32, error) {
	v := o.str(name)
	if v == nil {
		return nil, nil
	}
	n, err := strconv.ParseInt(*v, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--%s %q is not a number", name, *v)
	}
	return aws.Int32(int32(n)), nil
}

// shorthand reads the AWS CLI's Key=Value,Key=Value form.
func (o opts) shorthand(name string) map[string]string {
	out := map[string]string{}
	if v := o.str(name); v != nil {
		for _, kv := range strings.Split(*v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			out[k] = val
		}
	}
	return out
}

// jsonInto decodes a JSON option into v.
func (o opts) jsonInto(name string, v any) error {
	s := o.str(name)
	if s == nil {
		return fmt.Errorf("--%s is missing", name)
	}
	if err := json.Unmarshal([]byte(*s), v); err != nil {
		return fmt.Errorf("--%s: %w", name, err)
	}
	return nil
}

// fixOp is one command the doctor prints: the options it takes (flags end
// in "!"), the ones it needs, and the API call.
type fixOp struct {
	options  string
	required string
	run      func(ctx context.Context, x *Fixer, o opts) error
}

// parse reads argv (after the command words) against op's options.
func (op fixOp) parse(argv []string) (opts, error) {
	known, flags := map[string]bool{}, map[string]bool{}
	for _, f := range strings.Fields(op.options) {
		if name, ok := strings.CutSuffix(f, "!"); ok {
			flags[name] = true
		} else {
			known[f] = true
		}
	}
	o := opts{}
	for i := 0; i < len(argv); i++ {
		name, ok := strings.CutPrefix(argv[i], "--")
		if !ok {
			return nil, fmt.Errorf("unexpected argument %q", argv[i])
		}
		switch {
		case flags[name]:
			o[name] = nil
		case known[name]:
			if i+1 >= len(argv) || strings.HasPrefix(argv[i+1], "--") {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			for i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "--") {
				i++
				o[name] = append(o[name], argv[i])
			}
		default:
			return nil, fmt.Errorf("unknown option --%s", name)
		}
	}
	for _, r := range strings.Fields(op.required) {
		if !o.has(r) {
			return nil, fmt.Errorf("--%s is missing", r)
		}
	}
	return o, nil
}

// Run runs one fix command line.
func (x *Fixer) Run(ctx context.Context, line string) error {
	argv, err := SplitCommand(line)
	if err != nil {
		return err
	}
	if len(argv) < 3 {
		return fmt.Errorf("%w: %s", ErrUnknownFix, line)
	}
	key := strings.Join(argv[:3], " ")
	op, ok := fixOps[key]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownFix, key)
	}
	o, err := op.parse(argv[3:])
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if err := op.run(ctx, x, o); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// FixCommands lists the commands Run knows ("aws ec2 replace-route"…).
func FixCommands() []string {
	out := make([]string, 0, len(fixOps))
	for k := range fixOps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func naclEntry(o opts) (egress bool, proto *string, pr *ec2types.PortRange, err error) {
	if o.has("egress") == o.has("ingress") {
		return false, nil, nil, errors.New("give exactly one of --egress and --ingress")
	}
	if sh := o.shorthand("port-range"); len(sh) > 0 {
		from, err1 := strconv.ParseInt(sh["From"], 10, 32)
		to, err2 := strconv.ParseInt(sh["To"], 10, 32)
		if err1 != nil || err2 != nil {
			return false, nil, nil, fmt.Errorf("--port-range %q is not From=N,To=N", *o.str("port-range"))
		}
		pr = &ec2types.PortRange{From: aws.Int32(int32(from)), To: aws.Int32(int32(to))}
	}
	return o.has("egress"), o.str("protocol"), pr, nil
}

const (
	naclOptions  = "network-acl-id rule-number egress! ingress! protocol port-range cidr-block rule-action"
	naclRequired = "network-acl-id rule-number protocol cidr-block rule-action"
)

// naclFields are the options of create- and replace-network-acl-entry.
type naclFields struct {
	acl, protocol, cidr *string
	number              *int32
	egress              *bool
	ports               *ec2types.PortRange
	action              ec2types.RuleAction
}

func naclEntryOf(o opts) (naclFields, error) {
	n, err := o.int32("rule-number")
	if err != nil {
		return naclFields{}, err
	}
	egress, proto, pr, err := naclEntry(o)
	if err != nil {
		return naclFields{}, err
	}
	return naclFields{acl: o.str("network-acl-id"), protocol: proto, cidr: o.str("cidr-block"), number: n, egress: aws.Bool(egress),
		ports: pr, action: ec2types.RuleAction(*o.str("rule-action"))}, nil
}

// routeFields are the options of create-route and replace-route.
type routeFields struct{ table, dest, igw, nat, tgw, pcx *string }

func routeOf(o opts) routeFields {
	return routeFields{table: o.str("route-table-id"), dest: o.str("destination-cidr-block"), igw: o.str("gateway-id"),
		nat: o.str("nat-gateway-id"), tgw: o.str("transit-gateway-id"), pcx: o.str("vpc-peering-connection-id")}
}

var fixOps = map[string]fixOp{
	"aws ec2 start-instances": {"instance-ids", "instance-ids", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.EC2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: o["instance-ids"]})
		return err
	}},
	"aws ec2 delete-network-acl-entry": {"network-acl-id rule-number egress! ingress!", "network-acl-id rule-number", func(ctx context.Context, x *Fixer, o opts) error {
		n, err := o.int32("rule-number")
		if err != nil {
			return err
		}
		egress, _, _, err := naclEntry(o)
		if err != nil {
			return err
		}
		_, err = x.EC2.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: o.str("network-acl-id"), RuleNumber: n, Egress: aws.Bool(egress)})
		return err
	}},
	"aws ec2 create-network-acl-entry": {naclOptions, naclRequired, func(ctx context.Context, x *Fixer, o opts) error {
		e, err := naclEntryOf(o)
		if err != nil {
			return err
		}
		_, err = x.EC2.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: e.acl, RuleNumber: e.number, Egress: e.egress,
			Protocol: e.protocol, PortRange: e.ports, CidrBlock: e.cidr, RuleAction: e.action})
		return err
	}},
	"aws ec2 replace-network-acl-entry": {naclOptions, naclRequired, func(ctx context.Context, x *Fixer, o opts) error {
		e, err := naclEntryOf(o)
		if err != nil {
			return err
		}
		_, err = x.EC2.ReplaceNetworkAclEntry(ctx, &ec2.ReplaceNetworkAclEntryInput{NetworkAclId: e.acl, RuleNumber: e.number, Egress: e.egress,
			Protocol: e.protocol, PortRange: e.ports, CidrBlock: e.cidr, RuleAction: e.action})
		return err
	}},
	"aws ec2 create-route": {routeOptions, "route-table-id destination-cidr-block", func(ctx context.Context, x *Fixer, o opts) error {
		r := routeOf(o)
		_, err := x.EC2.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: r.table, DestinationCidrBlock: r.dest,
			GatewayId: r.igw, NatGatewayId: r.nat, TransitGatewayId: r.tgw, VpcPeeringConnectionId: r.pcx})
		return err
	}},
	"aws ec2 replace-route": {routeOptions, "route-table-id destination-cidr-block", func(ctx context.Context, x *Fixer, o opts) error {
		r := routeOf(o)
		_, err := x.EC2.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: r.table, DestinationCidrBlock: r.dest,
			GatewayId: r.igw, NatGatewayId: r.nat, TransitGatewayId: r.tgw, VpcPeeringConnectionId: r.pcx})
		return err
	}},
	"aws ec2 modify-vpc-attribute": {"vpc-id enable-dns-support! enable-dns-hostnames!", "vpc-id", func(ctx context.Context, x *Fixer, o opts) error {
		in := &ec2.ModifyVpcAttributeInput{VpcId: o.str("vpc-id")}
		on := &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}
		switch {
		case o.has("enable-dns-support") && !o.has("enable-dns-hostnames"):
			in.EnableDnsSupport = on
		case o.has("enable-dns-hostnames") && !o.has("enable-dns-support"):
			in.EnableDnsHostnames = on
		default:
			return errors.New("give one of --enable-dns-support and --enable-dns-hostnames")
		}
		_, err := x.EC2.ModifyVpcAttribute(ctx, in)
		return err
	}},
	"aws ec2 modify-vpc-endpoint": {"vpc-endpoint-id private-dns-enabled! reset-policy! add-subnet-ids policy-document", "vpc-endpoint-id", func(ctx context.Context, x *Fixer, o opts) error {
		in := &ec2.ModifyVpcEndpointInput{VpcEndpointId: o.str("vpc-endpoint-id"), AddSubnetIds: o["add-subnet-ids"], PolicyDocument: o.str("policy-document")}
		if o.has("private-dns-enabled") {
			in.PrivateDnsEnabled = aws.Bool(true)
		}
		if o.has("reset-policy") {
			in.ResetPolicy = aws.Bool(true)
		}
		_, err := x.EC2.ModifyVpcEndpoint(ctx, in)
		return err
	}},
	"aws ec2 create-vpc-endpoint": {"vpc-id vpc-endpoint-type service-name subnet-ids security-group-ids route-table-ids private-dns-enabled!", "vpc-id vpc-endpoint-type service-name", func(ctx context.Context, x *Fixer, o opts) error {
		in := &ec2.CreateVpcEndpointInput{VpcId: o.str("vpc-id"), VpcEndpointType: ec2types.VpcEndpointType(*o.str("vpc-endpoint-type")), ServiceName: o.str("service-name"),
			SubnetIds: o["subnet-ids"], SecurityGroupIds: o["security-group-ids"], RouteTableIds: o["route-table-ids"]}
		if o.has("private-dns-enabled") {
			in.PrivateDnsEnabled = aws.Bool(true)
		}
		_, err := x.EC2.CreateVpcEndpoint(ctx, in)
		return err
	}},
	"aws ec2 authorize-security-group-ingress": {"group-id ip-permissions", "group-id ip-permissions", func(ctx context.Context, x *Fixer, o opts) error {
		var perms []ec2types.IpPermission
		if err := o.jsonInto("ip-permissions", &perms); err != nil {
			return err
		}
		_, err := x.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: o.str("group-id"), IpPermissions: perms})
		return err
	}},
	"aws ec2 authorize-security-group-egress": {"group-id ip-permissions", "group-id ip-permissions", func(ctx context.Context, x *Fixer, o opts) error {
		var perms []ec2types.IpPermission
		if err := o.jsonInto("ip-permissions", &perms); err != nil {
			return err
		}
		_, err := x.EC2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: o.str("group-id"), IpPermissions: perms})
		return err
	}},
	"aws ec2 associate-iam-instance-profile": {"instance-id iam-instance-profile", "instance-id iam-instance-profile", func(ctx context.Context, x *Fixer, o opts) error {
		sh := o.shorthand("iam-instance-profile")
		spec := &ec2types.IamInstanceProfileSpecification{}
		if sh["Name"] != "" {
			spec.Name = aws.String(sh["Name"])
		}
		if sh["Arn"] != "" {
			spec.Arn = aws.String(sh["Arn"])
		}
		_, err := x.EC2.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: o.str("instance-id"), IamInstanceProfile: spec})
		return err
	}},
	"aws ec2 modify-instance-metadata-options": {"instance-id http-tokens", "instance-id http-tokens", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.EC2.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: o.str("instance-id"),
			HttpTokens: ec2types.HttpTokensState(*o.str("http-tokens"))})
		return err
	}},
	"aws iam attach-role-policy": {"role-name policy-arn", "role-name policy-arn", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: o.str("role-name"), PolicyArn: o.str("policy-arn")})
		return err
	}},
	"aws iam detach-role-policy": {"role-name policy-arn", "role-name policy-arn", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: o.str("role-name"), PolicyArn: o.str("policy-arn")})
		return err
	}},
	"aws iam update-assume-role-policy": {"role-name policy-document", "role-name policy-document", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: o.str("role-name"), PolicyDocument: o.str("policy-document")})
		return err
	}},
	"aws iam put-role-policy": {"role-name policy-name policy-document", "role-name policy-name policy-document", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: o.str("role-name"), PolicyName: o.str("policy-name"), PolicyDocument: o.str("policy-document")})
		return err
	}},
	"aws iam delete-role-policy": {"role-name policy-name", "role-name policy-name", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: o.str("role-name"), PolicyName: o.str("policy-name")})
		return err
	}},
	"aws iam create-policy-version": {"policy-arn policy-document set-as-default!", "policy-arn policy-document", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: o.str("policy-arn"), PolicyDocument: o.str("policy-document"),
			SetAsDefault: o.has("set-as-default")})
		return err
	}},
	"aws iam create-role": {"role-name assume-role-policy-document", "role-name assume-role-policy-document", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: o.str("role-name"), AssumeRolePolicyDocument: o.str("assume-role-policy-document")})
		return err
	}},
	"aws iam create-instance-profile": {"instance-profile-name", "instance-profile-name", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: o.str("instance-profile-name")})
		return err
	}},
	"aws iam add-role-to-instance-profile": {"instance-profile-name role-name", "instance-profile-name role-name", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: o.str("instance-profile-name"), RoleName: o.str("role-name")})
		return err
	}},
	"aws iam put-user-policy": {"user-name policy-name policy-document", "user-name policy-name policy-document", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.IAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: o.str("user-name"), PolicyName: o.str("policy-name"), PolicyDocument: o.str("policy-document")})
		return err
	}},
	"aws ssm update-service-setting": {"setting-id setting-value", "setting-id setting-value", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.SSM.UpdateServiceSetting(ctx, &ssm.UpdateServiceSettingInput{SettingId: o.str("setting-id"), SettingValue: o.str("setting-value")})
		return err
	}},
	"aws ssm send-command": {"document-name instance-ids", "document-name instance-ids", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.SSM.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: o.str("document-name"), InstanceIds: o["instance-ids"]})
		return err
	}},
	"aws s3api create-bucket": {"bucket create-bucket-configuration", "bucket", func(ctx context.Context, x *Fixer, o opts) error {
		in := &s3.CreateBucketInput{Bucket: o.str("bucket")}
		if loc := o.shorthand("create-bucket-configuration")["LocationConstraint"]; loc != "" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(loc)}
		}
		_, err := x.S3.CreateBucket(ctx, in)
		return err
	}},
	"aws s3api put-bucket-encryption": {"bucket server-side-encryption-configuration", "bucket server-side-encryption-configuration", func(ctx context.Context, x *Fixer, o opts) error {
		var cfg s3types.ServerSideEncryptionConfiguration
		if err := o.jsonInto("server-side-encryption-configuration", &cfg); err != nil {
			return err
		}
		_, err := x.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: o.str("bucket"), ServerSideEncryptionConfiguration: &cfg})
		return err
	}},
	"aws logs create-log-group": {"log-group-name", "log-group-name", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: o.str("log-group-name")})
		return err
	}},
	"aws logs associate-kms-key": {"log-group-name kms-key-id", "log-group-name kms-key-id", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.Logs.AssociateKmsKey(ctx, &cloudwatchlogs.AssociateKmsKeyInput{LogGroupName: o.str("log-group-name"), KmsKeyId: o.str("kms-key-id")})
		return err
	}},
	"aws kms enable-key": {"key-id", "key-id", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.KMS.EnableKey(ctx, &kms.EnableKeyInput{KeyId: o.str("key-id")})
		return err
	}},
	"aws kms cancel-key-deletion": {"key-id", "key-id", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.KMS.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: o.str("key-id")})
		return err
	}},
	"aws kms put-key-policy": {"key-id policy-name policy", "key-id policy", func(ctx context.Context, x *Fixer, o opts) error {
		_, err := x.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: o.str("key-id"), PolicyName: o.str("policy-name"), Policy: o.str("policy")})
		return err
	}},
	"ssmkit prefs set": {"document idle-timeout max-duration", "document", func(ctx context.Context, x *Fixer, o opts) error {
		values := map[string]any{}
		for flag, key := range map[string]string{"idle-timeout": prefs.KeyIdleSessionTimeout, "max-duration": prefs.KeyMaxSessionDuration} {
			if v := o.str(flag); v != nil {
				values[key] = *v
				if *v == "0" && key == prefs.KeyMaxSessionDuration {
					values[key] = ""
				}
			}
		}
		if len(values) == 0 {
			return errors.New("no preference given")
		}
		store := prefs.Store{SSM: x.SSM, Name: *o.str("document")}
		snap, err := store.Load(ctx)
		if err != nil {
			return err
		}
		doc := snap.Doc.Clone()
		for k, v := range values {
			doc.Set(k, v)
		}
		if err := prefs.Validate(doc); err != nil {
			return err
		}
		_, err = store.Save(ctx, snap, doc)
		return err
	}},
}

const routeOptions = "route-table-id destination-cidr-block gateway-id nat-gateway-id transit-gateway-id vpc-peering-connection-id"
