package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// Well-known names.
const (
	// DefaultDocument holds the account's Session Manager preferences.
	DefaultDocument = "SSM-SessionManagerRunShell"
	// CorePolicyARN is the AWS managed policy the agent's role needs.
	CorePolicyARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	// DHMSettingID is the default host management service setting.
	DHMSettingID = "/ssm/managed-instance/default-ec2-instance-management-role"
	// DefaultConcurrency bounds the AWS calls a Gatherer makes at once.
	DefaultConcurrency = 8
)

// EC2API is the part of the EC2 client the doctor uses.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeVpcAttribute(context.Context, *ec2.DescribeVpcAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeVpcAttributeOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
}

// SSMAPI is the part of the SSM client the doctor uses.
type SSMAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	GetDocument(context.Context, *ssm.GetDocumentInput, ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
	GetServiceSetting(context.Context, *ssm.GetServiceSettingInput, ...func(*ssm.Options)) (*ssm.GetServiceSettingOutput, error)
}

// IAMAPI is the part of the IAM client the doctor uses.
type IAMAPI interface {
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	SimulatePrincipalPolicy(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	GetUserPolicy(context.Context, *iam.GetUserPolicyInput, ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
}

// KMSAPI is the part of the KMS client the doctor uses.
type KMSAPI interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
}

// S3API is the part of the S3 client the doctor uses.
type S3API interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
}

// LogsAPI is the part of the CloudWatch Logs client the doctor uses.
type LogsAPI interface {
	DescribeLogGroups(context.Context, *cloudwatchlogs.DescribeLogGroupsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
}

// STSAPI is the part of the STS client the doctor uses.
type STSAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Clients are the AWS APIs a Gatherer calls.
type Clients struct {
	EC2  EC2API
	SSM  SSMAPI
	IAM  IAMAPI
	KMS  KMSAPI
	S3   S3API
	Logs LogsAPI
	STS  STSAPI
}

// NewClients builds Clients from an AWS configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		EC2:  ec2.NewFromConfig(cfg),
		SSM:  ssm.NewFromConfig(cfg),
		IAM:  iam.NewFromConfig(cfg),
		KMS:  kms.NewFromConfig(cfg),
		S3:   newS3(cfg),
		Logs: cloudwatchlogs.NewFromConfig(cfg),
		STS:  sts.NewFromConfig(cfg),
	}
}

func newS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
}

// Selection says which instances to check.
type Selection struct {
	// Targets are instance IDs (i-…), managed node IDs (mi-…) or Name tags.
	Targets []string
	// Tags are --filter tag:K=V filters: every key must match one of its
	// values.
	Tags map[string][]string
	// All checks every instance that is not terminated.
	All bool
}

// Gatherer collects Facts with few, batched AWS calls: the number of calls
// grows with the number of VPCs, roles and result pages, not instances.
type Gatherer struct {
	Clients Clients
	// Region is the clients' region (used in ARNs and endpoint names).
	Region string
	// Document is the preferences document (DefaultDocument when empty).
	Document string
	// Concurrency bounds parallel calls (DefaultConcurrency when zero).
	Concurrency int
	// OnInstances, when set, is told how many instances were found, so a
	// progress indicator can show a total.
	OnInstances func(n int)

	policyMu sync.Mutex
	policies map[string]*cachedPolicy
}

// cachedPolicy is one managed policy read at most once per Gather.
type cachedPolicy struct {
	once sync.Once
	doc  policy.Document
	err  error
}

// Gather collects the facts for sel.
func (g *Gatherer) Gather(ctx context.Context, sel Selection) (*Facts, error) {
	if g.Document == "" {
		g.Document = DefaultDocument
	}
	if g.Concurrency <= 0 {
		g.Concurrency = DefaultConcurrency
	}
	f := &Facts{Region: g.Region, Partition: partition(g.Region), Instances: map[string]*Instance{},
		Missing: map[string]string{}, Managed: map[string]*Managed{}, VPCs: map[string]*VPC{},
		Profiles: map[string]*Profile{}, Roles: map[string]*Role{}}
	r := newRunner(ctx, g.Concurrency)

	// Phase 1: what does not depend on the targets.
	r.Go(func(ctx context.Context) {
		f.Caller = &Caller{}
		out, err := g.Clients.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			f.Caller.Err = fmt.Errorf("sts GetCallerIdentity: %w", err)
			return
		}
		f.Caller.ARN, f.Caller.Account = aws.ToString(out.Arn), aws.ToString(out.Account)
	})
	r.Go(func(ctx context.Context) { f.Prefs = g.prefs(ctx) })
	r.Go(func(ctx context.Context) { f.CoreActions, f.CoreSource = g.coreActions(ctx) })
	var instErr error
	r.Go(func(ctx context.Context) { instErr = g.instances(ctx, sel, f) })
	r.Wait()
	if instErr != nil {
		return nil, instErr
	}
	f.Account = f.Caller.Account
	if f.Account == "" {
		for _, p := range f.Profiles {
			f.Account = arnAccount(p.ARN)
		}
	}
	if g.OnInstances != nil {
		g.OnInstances(len(f.Instances))
	}

	// Phase 2: per instance batch, VPC, role; and what the prefs name.
	g.managed(r, f)
	g.network(r, f)
	g.logging(r, f)
	g.identities(r, f)
	r.Wait()

	// Phase 3: the caller's permissions (needs instances and the key).
	g.caller(ctx, f)
	return f, nil
}

// runner runs functions with bounded concurrency.
type runner struct {
	ctx context.Context
	sem chan struct{}
	wg  sync.WaitGroup
}

func newRunner(ctx context.Context, n int) *runner {
	return &runner{ctx: ctx, sem: make(chan struct{}, n)}
}

// Go runs fn when a slot is free. fn records its own errors in the facts.
func (r *runner) Go(fn func(ctx context.Context)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case r.sem <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		fn(r.ctx)
	}()
}

// Wait waits for every function started so far.
func (r *runner) Wait() { r.wg.Wait() }

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func arnAccount(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// instances resolves the selection with DescribeInstances.
func (g *Gatherer) instances(ctx context.Context, sel Selection, f *Facts) error {
	var ids, names, managedIDs []string
	for _, t := range sel.Targets {
		switch {
		case strings.HasPrefix(t, "i-"):
			ids = append(ids, t)
		case strings.HasPrefix(t, "mi-"):
			managedIDs = append(managedIDs, t)
		default:
			names = append(names, t)
		}
	}
	var tagFilters []ec2types.Filter
	for k, v := range sel.Tags {
		tagFilters = append(tagFilters, ec2types.Filter{Name: aws.String("tag:" + k), Values: v})
	}
	sort.Slice(tagFilters, func(i, j int) bool { return *tagFilters[i].Name < *tagFilters[j].Name })
	notTerminated := ec2types.Filter{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}}
	var queries [][]ec2types.Filter
	for _, chunk := range chunks(ids, 200) {
		queries = append(queries, append([]ec2types.Filter{{Name: aws.String("instance-id"), Values: chunk}}, tagFilters...))
	}
	for _, chunk := range chunks(names, 200) {
		queries = append(queries, append([]ec2types.Filter{{Name: aws.String("tag:Name"), Values: chunk}, notTerminated}, tagFilters...))
	}
	if len(sel.Targets) == 0 && (sel.All || len(tagFilters) > 0) {
		queries = append(queries, append([]ec2types.Filter{notTerminated}, tagFilters...))
	}
	byName := map[string][]string{}
	for _, q := range queries {
		p := ec2.NewDescribeInstancesPaginator(g.Clients.EC2, &ec2.DescribeInstancesInput{Filters: q, MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describing instances: %w", err)
			}
			for _, res := range out.Reservations {
				for _, i := range res.Instances {
					inst := convertInstance(i)
					f.Instances[inst.ID] = inst
					byName[inst.Name] = append(byName[inst.Name], inst.ID)
				}
			}
		}
	}
	for _, id := range ids {
		if _, ok := f.Instances[id]; !ok {
			f.Missing[id] = "no EC2 instance with this ID in " + g.Region
		}
	}
	for _, n := range names {
		if len(byName[n]) == 0 {
			f.Missing[n] = fmt.Sprintf("no instance with Name tag %q in %s", n, g.Region)
		}
	}
	for _, id := range managedIDs {
		// Hybrid nodes are not in EC2; DescribeInstanceInformation decides.
		f.Instances[id] = &Instance{ID: id, State: "hybrid"}
	}
	return nil
}

func chunks(s []string, n int) [][]string {
	var out [][]string
	for len(s) > 0 {
		k := min(n, len(s))
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

func convertInstance(i ec2types.Instance) *Instance {
	inst := &Instance{ID: aws.ToString(i.InstanceId), VpcID: aws.ToString(i.VpcId), SubnetID: aws.ToString(i.SubnetId),
		PrivateIP: aws.ToString(i.PrivateIpAddress), PublicIP: aws.ToString(i.PublicIpAddress)}
	if i.State != nil {
		inst.State = string(i.State.Name)
	}
	if i.Placement != nil {
		inst.AvailabilityZone = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.IamInstanceProfile != nil {
		inst.ProfileARN = aws.ToString(i.IamInstanceProfile.Arn)
	}
	if i.MetadataOptions != nil {
		inst.HTTPTokens = string(i.MetadataOptions.HttpTokens)
	}
	// The primary interface's groups are the instance's; some emulators
	// report them only on the interfaces, so take the union.
	for _, sg := range i.SecurityGroups {
		inst.SecurityGroups = append(inst.SecurityGroups, aws.ToString(sg.GroupId))
	}
	for _, ni := range i.NetworkInterfaces {
		for _, sg := range ni.Groups {
			if id := aws.ToString(sg.GroupId); !contains(inst.SecurityGroups, id) {
				inst.SecurityGroups = append(inst.SecurityGroups, id)
			}
		}
	}
	for _, t := range i.Tags {
		if aws.ToString(t.Key) == "Name" {
			inst.Name = aws.ToString(t.Value)
		}
	}
	return inst
}

// managed lists DescribeInstanceInformation for the targets, 50 IDs a page.
func (g *Gatherer) managed(r *runner, f *Facts) {
	ids := make([]string, 0, len(f.Instances))
	for id := range f.Instances {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var mu sync.Mutex
	for _, chunk := range chunks(ids, 50) {
		r.Go(func(ctx context.Context) {
			p := ssm.NewDescribeInstanceInformationPaginator(g.Clients.SSM, &ssm.DescribeInstanceInformationInput{
				Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}}, MaxResults: aws.Int32(50)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				mu.Lock()
				if err != nil {
					f.ManagedErr = fmt.Errorf("ssm DescribeInstanceInformation: %w", err)
					mu.Unlock()
					return
				}
				for _, ii := range out.InstanceInformationList {
					m := &Managed{PingStatus: string(ii.PingStatus), AgentVersion: aws.ToString(ii.AgentVersion),
						PlatformType: string(ii.PlatformType), PlatformName: aws.ToString(ii.PlatformName),
						ResourceType: string(ii.ResourceType), IAMRole: aws.ToString(ii.IamRole)}
					if ii.LastPingDateTime != nil {
						m.LastPing = *ii.LastPingDateTime
					}
					f.Managed[aws.ToString(ii.InstanceId)] = m
				}
				mu.Unlock()
			}
		})
	}
}

// network describes every VPC of the targets with one call per resource
// type for all VPCs together, plus the two DNS attributes per VPC.
func (g *Gatherer) network(r *runner, f *Facts) {
	var vpcIDs []string
	for _, i := range f.Instances {
		if i.VpcID != "" && f.VPCs[i.VpcID] == nil {
			f.VPCs[i.VpcID] = &VPC{ID: i.VpcID, Subnets: map[string]Subnet{}, SecurityGroups: map[string]SecurityGroup{}}
			vpcIDs = append(vpcIDs, i.VpcID)
		}
	}
	if len(vpcIDs) == 0 {
		return
	}
	sort.Strings(vpcIDs)
	var mu sync.Mutex
	fail := func(vpcs []string, what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range vpcs {
			if v := f.VPCs[id]; v.Err == nil {
				v.Err = fmt.Errorf("ec2 %s: %w", what, err)
			}
		}
	}
	for _, chunk := range chunks(vpcIDs, 100) {
		vpcFilter := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: chunk}}
		r.Go(func(ctx context.Context) {
			out, err := g.Clients.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: chunk})
			if err != nil {
				fail(chunk, "DescribeVpcs", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range out.Vpcs {
				if vpc := f.VPCs[aws.ToString(v.VpcId)]; vpc != nil {
					vpc.CIDR = aws.ToString(v.CidrBlock)
				}
			}
		})
		pages := func(op string, drain func(context.Context) error) {
			r.Go(func(ctx context.Context) {
				if err := drain(ctx); err != nil {
					fail(chunk, op, err)
				}
			})
		}
		pages("DescribeSubnets", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeSubnetsPaginator(g.Clients.EC2, &ec2.DescribeSubnetsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeSubnetsOutput) {
					for _, s := range out.Subnets {
						if vpc := f.VPCs[aws.ToString(s.VpcId)]; vpc != nil {
							vpc.Subnets[aws.ToString(s.SubnetId)] = Subnet{ID: aws.ToString(s.SubnetId), CIDR: aws.ToString(s.CidrBlock), AvailabilityZone: aws.ToString(s.AvailabilityZone)}
						}
					}
				})
		})
		pages("DescribeRouteTables", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeRouteTablesPaginator(g.Clients.EC2, &ec2.DescribeRouteTablesInput{Filters: vpcFilter, MaxResults: aws.Int32(100)}), &mu,
				func(out *ec2.DescribeRouteTablesOutput) {
					for _, rt := range out.RouteTables {
						if vpc := f.VPCs[aws.ToString(rt.VpcId)]; vpc != nil {
							vpc.RouteTables = append(vpc.RouteTables, convertRouteTable(rt))
						}
					}
				})
		})
		pages("DescribeVpcEndpoints", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeVpcEndpointsPaginator(g.Clients.EC2, &ec2.DescribeVpcEndpointsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeVpcEndpointsOutput) {
					for _, e := range out.VpcEndpoints {
						if vpc := f.VPCs[aws.ToString(e.VpcId)]; vpc != nil {
							vpc.Endpoints = append(vpc.Endpoints, convertEndpoint(e))
						}
					}
				})
		})
		pages("DescribeSecurityGroups", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeSecurityGroupsPaginator(g.Clients.EC2, &ec2.DescribeSecurityGroupsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeSecurityGroupsOutput) {
					for _, sg := range out.SecurityGroups {
						if vpc := f.VPCs[aws.ToString(sg.VpcId)]; vpc != nil {
							vpc.SecurityGroups[aws.ToString(sg.GroupId)] = SecurityGroup{ID: aws.ToString(sg.GroupId),
								Ingress: convertPerms(sg.IpPermissions), Egress: convertPerms(sg.IpPermissionsEgress)}
						}
					}
				})
		})
		pages("DescribeNetworkAcls", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeNetworkAclsPaginator(g.Clients.EC2, &ec2.DescribeNetworkAclsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeNetworkAclsOutput) {
					for _, a := range out.NetworkAcls {
						if vpc := f.VPCs[aws.ToString(a.VpcId)]; vpc != nil {
							vpc.NACLs = append(vpc.NACLs, convertNACL(a))
						}
					}
				})
		})
	}
	for _, id := range vpcIDs {
		for _, attr := range []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames} {
			r.Go(func(ctx context.Context) {
				out, err := g.Clients.EC2.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(id), Attribute: attr})
				if err != nil {
					fail([]string{id}, "DescribeVpcAttribute", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if out.EnableDnsSupport != nil {
					f.VPCs[id].DNSSupport = out.EnableDnsSupport.Value
				}
				if out.EnableDnsHostnames != nil {
					f.VPCs[id].DNSHostnames = out.EnableDnsHostnames.Value
				}
			})
		}
	}
}

// pager is an aws-sdk-go-v2 EC2 paginator.
type pager[T any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*ec2.Options)) (T, error)
}

// eachPage hands every page of p to add, under mu, and stops at the first
// error.
func eachPage[T any](ctx context.Context, p pager[T], mu *sync.Mutex, add func(T)) error {
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		add(out)
		mu.Unlock()
	}
	return nil
}

func convertRouteTable(rt ec2types.RouteTable) RouteTable {
	out := RouteTable{ID: aws.ToString(rt.RouteTableId)}
	for _, a := range rt.Associations {
		if aws.ToBool(a.Main) {
			out.Main = true
		}
		if a.SubnetId != nil {
			out.SubnetIDs = append(out.SubnetIDs, aws.ToString(a.SubnetId))
		}
	}
	for _, r := range rt.Routes {
		target := ""
		for _, t := range []*string{r.GatewayId, r.NatGatewayId, r.TransitGatewayId, r.NetworkInterfaceId,
			r.VpcPeeringConnectionId, r.InstanceId, r.EgressOnlyInternetGatewayId, r.LocalGatewayId, r.CoreNetworkArn} {
			if aws.ToString(t) != "" {
				target = aws.ToString(t)
				break
			}
		}
		out.Routes = append(out.Routes, Route{Destination: aws.ToString(r.DestinationCidrBlock), Target: target, State: string(r.State)})
	}
	return out
}

func convertEndpoint(e ec2types.VpcEndpoint) Endpoint {
	name := aws.ToString(e.ServiceName)
	short := name[strings.LastIndex(name, ".")+1:]
	out := Endpoint{ID: aws.ToString(e.VpcEndpointId), Service: short, Type: string(e.VpcEndpointType),
		State: strings.ToLower(string(e.State)), PrivateDNS: aws.ToBool(e.PrivateDnsEnabled),
		SubnetIDs: e.SubnetIds, Policy: aws.ToString(e.PolicyDocument)}
	for _, gr := range e.Groups {
		out.SecurityGroups = append(out.SecurityGroups, aws.ToString(gr.GroupId))
	}
	return out
}

func convertPerms(perms []ec2types.IpPermission) []SGRule {
	var out []SGRule
	for _, p := range perms {
		r := SGRule{Protocol: aws.ToString(p.IpProtocol), From: aws.ToInt32(p.FromPort), To: aws.ToInt32(p.ToPort)}
		for _, c := range p.IpRanges {
			r.CIDRs = append(r.CIDRs, aws.ToString(c.CidrIp))
		}
		for _, gp := range p.UserIdGroupPairs {
			r.Groups = append(r.Groups, aws.ToString(gp.GroupId))
		}
		for _, pl := range p.PrefixListIds {
			r.PrefixLists = append(r.PrefixLists, aws.ToString(pl.PrefixListId))
		}
		out = append(out, r)
	}
	return out
}

func convertNACL(a ec2types.NetworkAcl) NACL {
	out := NACL{ID: aws.ToString(a.NetworkAclId), Default: aws.ToBool(a.IsDefault)}
	for _, as := range a.Associations {
		out.SubnetIDs = append(out.SubnetIDs, aws.ToString(as.SubnetId))
	}
	for _, e := range a.Entries {
		ne := NACLEntry{Number: aws.ToInt32(e.RuleNumber), Egress: aws.ToBool(e.Egress), Protocol: aws.ToString(e.Protocol),
			CIDR: aws.ToString(e.CidrBlock), Allow: e.RuleAction == ec2types.RuleActionAllow}
		if e.PortRange != nil {
			ne.From, ne.To = aws.ToInt32(e.PortRange.From), aws.ToInt32(e.PortRange.To)
		}
		out.Entries = append(out.Entries, ne)
	}
	return out
}

// identities reads each instance profile once, each role's policies once
// and each managed policy once.
func (g *Gatherer) identities(r *runner, f *Facts) {
	needDHM := false
	for _, i := range f.Instances {
		if i.ProfileARN != "" {
			f.Profiles[i.ProfileARN] = &Profile{ARN: i.ProfileARN, Name: i.ProfileARN[strings.LastIndex(i.ProfileARN, "/")+1:]}
		} else if i.State != "hybrid" {
			needDHM = true
		}
	}
	var mu sync.Mutex
	roleNames := map[string]bool{}
	var sub sync.WaitGroup
	for _, p := range f.Profiles {
		sub.Add(1)
		r.Go(func(ctx context.Context) {
			defer sub.Done()
			out, err := g.Clients.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(p.Name)})
			if err != nil {
				p.Err = fmt.Errorf("iam GetInstanceProfile %s: %w", p.Name, err)
				return
			}
			if len(out.InstanceProfile.Roles) == 0 {
				return
			}
			role := out.InstanceProfile.Roles[0]
			p.RoleName = aws.ToString(role.RoleName)
			mu.Lock()
			defer mu.Unlock()
			if f.Roles[p.RoleName] == nil {
				f.Roles[p.RoleName] = newRole(aws.ToString(role.RoleName), aws.ToString(role.Arn), aws.ToString(role.AssumeRolePolicyDocument))
				roleNames[p.RoleName] = true
			}
		})
	}
	if needDHM {
		sub.Add(1)
		r.Go(func(ctx context.Context) {
			defer sub.Done()
			f.DHM = &Setting{ID: DHMSettingID}
			out, err := g.Clients.SSM.GetServiceSetting(ctx, &ssm.GetServiceSettingInput{SettingId: aws.String(DHMSettingID)})
			if err != nil {
				f.DHM.Err = fmt.Errorf("ssm GetServiceSetting: %w", err)
				return
			}
			f.DHM.Value = aws.ToString(out.ServiceSetting.SettingValue)
			if f.DHM.Value == "" || f.DHM.Value == "$None" {
				return
			}
			name := f.DHM.Value[strings.LastIndex(f.DHM.Value, "/")+1:]
			role, err := g.Clients.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				f.Roles[name] = &Role{Name: name, Err: fmt.Errorf("iam GetRole %s: %w", name, err)}
				return
			}
			f.Roles[name] = newRole(name, aws.ToString(role.Role.Arn), aws.ToString(role.Role.AssumeRolePolicyDocument))
			roleNames[name] = true
		})
	}
	// Role policies need the role names: wait for this phase's lookups in
	// a goroutine of our own so that other phase-2 work keeps running.
	done := make(chan struct{})
	go func() { sub.Wait(); close(done) }()
	select {
	case <-done:
	case <-r.ctx.Done():
		return
	}
	policyARNs := map[string][]string{} // policy ARN → role names
	var sub2 sync.WaitGroup
	for name := range roleNames {
		role := f.Roles[name]
		sub2.Add(1)
		r.Go(func(ctx context.Context) {
			defer sub2.Done()
			p := iam.NewListAttachedRolePoliciesPaginator(g.Clients.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				mu.Lock()
				if err != nil {
					role.Err = fmt.Errorf("iam ListAttachedRolePolicies %s: %w", name, err)
					mu.Unlock()
					return
				}
				for _, ap := range out.AttachedPolicies {
					policyARNs[aws.ToString(ap.PolicyArn)] = append(policyARNs[aws.ToString(ap.PolicyArn)], name)
				}
				mu.Unlock()
			}
		})
		sub2.Add(1)
		r.Go(func(ctx context.Context) {
			defer sub2.Done()
			p := iam.NewListRolePoliciesPaginator(g.Clients.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
			var inline []string
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					mu.Lock()
					role.Err = fmt.Errorf("iam ListRolePolicies %s: %w", name, err)
					mu.Unlock()
					return
				}
				inline = append(inline, out.PolicyNames...)
			}
			for _, pn := range inline {
				out, err := g.Clients.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
				mu.Lock()
				if err != nil {
					role.Err = fmt.Errorf("iam GetRolePolicy %s/%s: %w", name, pn, err)
				} else if d, err := policy.Parse("inline:"+pn, aws.ToString(out.PolicyDocument)); err != nil {
					role.Err = err
				} else {
					role.Policies = append(role.Policies, d)
					role.PolicyNames = append(role.PolicyNames, "inline:"+pn)
				}
				mu.Unlock()
			}
		})
	}
	sub2.Wait()
	for arn, roles := range policyARNs {
		r.Go(func(ctx context.Context) {
			d, err := g.managedPolicy(ctx, arn)
			mu.Lock()
			defer mu.Unlock()
			for _, name := range roles {
				role := f.Roles[name]
				if err != nil {
					role.Err = err
					continue
				}
				role.Policies = append(role.Policies, d)
				role.PolicyNames = append(role.PolicyNames, arn)
			}
		})
	}
}

func newRole(name, arn, trust string) *Role {
	role := &Role{Name: name, ARN: arn}
	if d, err := policy.Parse("trust", trust); err != nil {
		role.Err = err
	} else {
		role.Trust = &d
	}
	return role
}

// managedPolicy reads a managed policy's default version, once per ARN.
func (g *Gatherer) managedPolicy(ctx context.Context, arn string) (policy.Document, error) {
	g.policyMu.Lock()
	if g.policies == nil {
		g.policies = map[string]*cachedPolicy{}
	}
	c := g.policies[arn]
	if c == nil {
		c = &cachedPolicy{}
		g.policies[arn] = c
	}
	g.policyMu.Unlock()
	c.once.Do(func() { c.doc, c.err = g.readManagedPolicy(ctx, arn) })
	return c.doc, c.err
}

func (g *Gatherer) readManagedPolicy(ctx context.Context, arn string) (policy.Document, error) {
	pol, err := g.Clients.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil {
		return policy.Document{}, fmt.Errorf("iam GetPolicy %s: %w", arn, err)
	}
	v, err := g.Clients.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		return policy.Document{}, fmt.Errorf("iam GetPolicyVersion %s: %w", arn, err)
	}
	return policy.Parse(arn, aws.ToString(v.PolicyVersion.Document))
}

// builtinCoreActions is AmazonSSMManagedInstanceCore's action list, used
// when the managed policy cannot be read.
var builtinCoreActions = []string{
	"ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument", "ssm:DescribeDocument",
	"ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters", "ssm:ListAssociations", "ssm:ListInstanceAssociations",
	"ssm:PutInventory", "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus",
	"ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
	"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint",
	"ec2messages:GetMessages", "ec2messages:SendReply",
}

func (g *Gatherer) coreActions(ctx context.Context) ([]string, string) {
	d, err := g.managedPolicy(ctx, CorePolicyARN)
	if err != nil {
		return builtinCoreActions, "built-in list (" + err.Error() + ")"
	}
	acts := policy.Actions(d)
	if len(acts) == 0 {
		return builtinCoreActions, "built-in list (the managed policy lists no actions)"
	}
	return acts, CorePolicyARN
}

func (g *Gatherer) prefs(ctx context.Context) *Prefs {
	out, err := g.Clients.SSM.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String(g.Document)})
	if err != nil {
		var nf *ssmtypes.InvalidDocument
		if errors.As(err, &nf) || apiCode(err) == "InvalidDocument" {
			return &Prefs{Document: g.Document}
		}
		return &Prefs{Document: g.Document, Err: fmt.Errorf("ssm GetDocument %s: %w", g.Document, err)}
	}
	return ParsePrefs(g.Document, aws.ToString(out.Content))
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// logging reads the bucket, log group and key the preferences name. It
// needs Prefs, which phase 1 read.
func (g *Gatherer) logging(r *runner, f *Facts) {
	p := f.Prefs
	if p == nil || p.Err != nil {
		return
	}
	if p.S3Bucket != "" {
		f.Bucket = &Bucket{Name: p.S3Bucket}
		r.Go(func(ctx context.Context) {
			b := f.Bucket
			if _, err := g.Clients.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name)}); err != nil {
				if code := apiCode(err); code == "NotFound" || code == "NoSuchBucket" {
					return
				}
				b.Err = fmt.Errorf("s3 HeadBucket %s: %w", b.Name, err)
				return
			}
			b.Exists = true
			_, err := g.Clients.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(b.Name)})
			switch {
			case err == nil:
				b.Encrypted = true
			case apiCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
			default:
				b.EncryptionErr = fmt.Errorf("s3 GetBucketEncryption %s: %w", b.Name, err)
			}
		})
	}
	if p.LogGroup != "" {
		f.LogGroup = &LogGroup{Name: p.LogGroup}
		r.Go(func(ctx context.Context) {
			lg := f.LogGroup
			out, err := g.Clients.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(lg.Name), Limit: aws.Int32(50)})
			if err != nil {
				lg.Err = fmt.Errorf("logs DescribeLogGroups %s: %w", lg.Name, err)
				return
			}
			for _, x := range out.LogGroups {
				if aws.ToString(x.LogGroupName) == lg.Name {
					lg.Exists, lg.KMSKeyID = true, aws.ToString(x.KmsKeyId)
				}
			}
		})
	}
	if p.KMSKeyID != "" {
		f.Key = &Key{ID: p.KMSKeyID}
		r.Go(func(ctx context.Context) {
			k := f.Key
			out, err := g.Clients.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.ID)})
			if err != nil {
				if apiCode(err) == "NotFoundException" {
					return
				}
				k.Err = fmt.Errorf("kms DescribeKey %s: %w", k.ID, err)
				return
			}
			k.Exists, k.ARN, k.Enabled, k.State = true, aws.ToString(out.KeyMetadata.Arn), out.KeyMetadata.Enabled, string(out.KeyMetadata.KeyState)
			pol, err := g.Clients.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: out.KeyMetadata.KeyId, PolicyName: aws.String("default")})
			if err != nil {
				k.PolicyErr = fmt.Errorf("kms GetKeyPolicy: %w", err)
				return
			}
			if d, err := policy.Parse("key policy", aws.ToString(pol.Policy)); err != nil {
				k.PolicyErr = err
			} else {
				k.Policy = &d
			}
		})
	}
}

// callerActions are what a user needs to open and end sessions.
func callerRequests(f *Facts) [][2]string {
	var reqs [][2]string
	doc := fmt.Sprintf("arn:%s:ssm:%s::document/%s", f.Partition, f.Region, "SSM-SessionManagerRunShell")
	reqs = append(reqs, [2]string{"ssm:StartSession", doc},
		[2]string{"ssm:TerminateSession", fmt.Sprintf("arn:%s:ssm:%s:%s:session/*", f.Partition, f.Region, f.Account)})
	if f.Key != nil && f.Key.ARN != "" {
		reqs = append(reqs, [2]string{"kms:GenerateDataKey", f.Key.ARN})
	}
	return reqs
}

// instanceARN is the ARN of an EC2 instance or managed node.
func instanceARN(f *Facts, id string) string {
	if strings.HasPrefix(id, "mi-") {
		return fmt.Sprintf("arn:%s:ssm:%s:%s:managed-instance/%s", f.Partition, f.Region, f.Account, id)
	}
	return fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", f.Partition, f.Region, f.Account, id)
}

// caller decides what the caller may do: SimulatePrincipalPolicy when
// allowed and implemented, else its own policies evaluated here.
func (g *Gatherer) caller(ctx context.Context, f *Facts) {
	c := f.Caller
	if c == nil || c.Err != nil || c.ARN == "" {
		return
	}
	principal := principalARN(c.ARN)
	// Simulate with every target's ARN only for small sets; fleets use a
	// wildcard instance ARN so the call count stays flat.
	var resources []string
	for id := range f.Instances {
		resources = append(resources, instanceARN(f, id))
	}
	sort.Strings(resources)
	if len(resources) > 20 {
		resources = []string{instanceARN(f, "*")}
	}
	reqs := callerRequests(f)
	sim := map[string]policy.Decision{}
	ok := true
	simulate := func(actions, res []string) {
		out, err := g.Clients.IAM.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
			PolicySourceArn: aws.String(principal), ActionNames: actions, ResourceArns: res},
			// Best effort: an emulator without it answers 500, which is
			// not worth retrying.
			func(o *iam.Options) { o.RetryMaxAttempts = 1 })
		if err != nil {
			ok = false
			c.EvalErr = errors.New(shortErr(err))
			return
		}
		for _, er := range out.EvaluationResults {
			key := aws.ToString(er.EvalActionName) + " "
			for _, rr := range er.ResourceSpecificResults {
				sim[key+aws.ToString(rr.EvalResourceName)] = simDecision(rr.EvalResourceDecision)
			}
			sim[key+aws.ToString(er.EvalResourceName)] = simDecision(er.EvalDecision)
		}
	}
	if principal != "" {
		simulate([]string{"ssm:StartSession"}, resources)
		for _, rq := range reqs {
			if ok {
				simulate([]string{rq[0]}, []string{rq[1]})
			}
		}
	}
	if ok && principal != "" {
		c.Method, c.Simulated = "iam:SimulatePrincipalPolicy", sim
		return
	}
	// Own evaluation from the caller's identity policies.
	docs, err := g.callerPolicies(ctx, principal)
	if err != nil {
		c.EvalErr = fmt.Errorf("%v; reading the caller's policies: %s", c.EvalErr, shortErr(err))
		return
	}
	c.Method, c.Policies, c.EvalErr = "policy evaluation", docs, nil
}

func simDecision(d iamtypes.PolicyEvaluationDecisionType) policy.Decision {
	switch d {
	case iamtypes.PolicyEvaluationDecisionTypeAllowed:
		return policy.Allowed
	case iamtypes.PolicyEvaluationDecisionTypeExplicitDeny:
		return policy.ExplicitDeny
	}
	return policy.ImplicitDeny
}

// principalARN turns an STS caller ARN into the IAM principal to read:
// arn:aws:sts::1:assumed-role/R/s → arn:aws:iam::1:role/R.
func principalARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	res := parts[5]
	switch {
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		role := strings.Split(strings.TrimPrefix(res, "assumed-role/"), "/")[0]
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
	case parts[2] == "sts" && strings.HasPrefix(res, "user/"):
		// moto's (and the sandbox's) caller identity.
		return fmt.Sprintf("arn:%s:iam::%s:%s", parts[1], parts[4], res)
	case parts[2] == "iam":
		return arn
	}
	return ""
}

func (g *Gatherer) callerPolicies(ctx context.Context, principal string) ([]policy.Document, error) {
	i := strings.LastIndex(principal, ":")
	if i < 0 {
		return nil, errors.New("the caller is not an IAM user or role")
	}
	res := principal[i+1:]
	name := res[strings.LastIndex(res, "/")+1:]
	var arns, inline []string
	var getInline func(ctx context.Context, policyName string) (*string, error)
	switch {
	case strings.HasPrefix(res, "role/"):
		ap := iam.NewListAttachedRolePoliciesPaginator(g.Clients.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
		for ap.HasMorePages() {
			out, err := ap.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, p := range out.AttachedPolicies {
				arns = append(arns, aws.ToString(p.PolicyArn))
			}
		}
		names, err := g.Clients.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		inline = names.PolicyNames
		getInline = func(ctx context.Context, pn string) (*string, error) {
			out, err := g.Clients.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		}
	case strings.HasPrefix(res, "user/"):
		out, err := g.Clients.IAM.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		for _, p := range out.AttachedPolicies {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
		names, err := g.Clients.IAM.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		inline = names.PolicyNames
		getInline = func(ctx context.Context, pn string) (*string, error) {
			out, err := g.Clients.IAM.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		}
	default:
		return nil, fmt.Errorf("cannot read the policies of %s", principal)
	}
	var docs []policy.Document
	for _, arn := range arns {
		d, err := g.managedPolicy(ctx, arn)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	for _, pn := range inline {
		doc, err := getInline(ctx, pn)
		if err != nil {
			return nil, err
		}
		if d, err := policy.Parse("inline:"+pn, aws.ToString(doc)); err == nil {
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// shortErr is an error's API code and message, or its text.
func shortErr(err error) string {
	var ae smithy.APIError
	var re *smithyhttp.ResponseError
	if !errors.As(err, &ae) && errors.As(err, &re) {
		var oe *smithy.OperationError
		if errors.As(err, &oe) {
			return fmt.Sprintf("%s %s answered HTTP %d", oe.ServiceID, oe.OperationName, re.HTTPStatusCode())
		}
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	if errors.As(err, &ae) {
		if m := ae.ErrorMessage(); m != "" && len(m) < 200 {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// since formats the time since t for evidence.
func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
