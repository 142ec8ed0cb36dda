package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/ssmkit/ssmkit/pkg/awsapi"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// Well-known names.
const (
	// DefaultDocument holds the account's Session Manager preferences.
	DefaultDocument = ssmdoc.Shell
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
	DescribeNatGateways(context.Context, *ec2.DescribeNatGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeNatGatewaysOutput, error)
	DescribeInternetGateways(context.Context, *ec2.DescribeInternetGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error)
}

// Route53API is the part of Route 53 the doctor uses to follow private
// hosted zones to centralised endpoints.
type Route53API interface {
	ListHostedZonesByVPC(context.Context, *route53.ListHostedZonesByVPCInput, ...func(*route53.Options)) (*route53.ListHostedZonesByVPCOutput, error)
	ListResourceRecordSets(context.Context, *route53.ListResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
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
	ListGroupsForUser(context.Context, *iam.ListGroupsForUserInput, ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	ListAttachedGroupPolicies(context.Context, *iam.ListAttachedGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error)
	ListGroupPolicies(context.Context, *iam.ListGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error)
	GetGroupPolicy(context.Context, *iam.GetGroupPolicyInput, ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error)
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
	// Route53 may be nil: private hosted zones are then not followed.
	Route53 Route53API
}

// NewClients builds Clients from an AWS configuration, the way every
// ssmkit command builds them (package awsapi).
func NewClients(cfg aws.Config) Clients {
	return Clients{
		EC2:     awsapi.NewEC2(cfg),
		SSM:     awsapi.NewSSM(cfg),
		IAM:     awsapi.NewIAM(cfg),
		KMS:     awsapi.NewKMS(cfg),
		S3:      awsapi.NewS3(cfg),
		Logs:    awsapi.NewCloudWatchLogs(cfg),
		STS:     awsapi.NewSTS(cfg),
		Route53: awsapi.NewRoute53(cfg),
	}
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

	factsMu  sync.Mutex
	policyMu sync.Mutex
	policies map[string]*cachedPolicy
}

// cachedPolicy is one managed policy read at most once per Gather.
type cachedPolicy struct {
	once sync.Once
	doc  policy.Document
	err  error
}

// Gather collects the facts for sel in phases; each phase runs its AWS
// calls in an errgroup bounded by Concurrency and waits for all of them
// before the next starts, because it needs what the previous one found:
//
//  1. the caller, the preferences, the core policy's actions, the targets;
//  2. per 50 targets the managed-node entries, per VPC the network, the
//     bucket, log group and key the preferences name, the instance
//     profiles and the default host management setting and role;
//  3. each role's attached and inline policies, and the caller's rights;
//     the records of the private hosted zones that cover service names;
//  4. each managed policy the roles attach, once; the endpoints in other
//     VPCs (hubs) those zones point at;
//  5. the subnets and security groups of those endpoints.
//
// A fact that cannot be read is recorded in Facts with its error; only a
// failure to list the targets, or ctx ending, makes Gather fail. When ctx
// ends Gather returns its error and no Facts: it never returns facts that
// are half gathered.
func (g *Gatherer) Gather(ctx context.Context, sel Selection) (*Facts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if g.Document == "" {
		g.Document = DefaultDocument
	}
	if g.Concurrency <= 0 {
		g.Concurrency = DefaultConcurrency
	}
	g.policyMu.Lock()
	g.policies = map[string]*cachedPolicy{}
	g.policyMu.Unlock()
	f := &Facts{Region: g.Region, Partition: partition(g.Region), Instances: map[string]*Instance{},
		Missing: map[string]string{}, Managed: map[string]*Managed{}, VPCs: map[string]*VPC{},
		Profiles: map[string]*Profile{}, Roles: map[string]*Role{}, Caller: &Caller{}, RemoteEndpoints: map[string]*RemoteEndpoint{}}

	p := g.phase(ctx)
	p.Go(func(ctx context.Context) { g.callerIdentity(ctx, f.Caller) })
	p.Go(func(ctx context.Context) { f.Prefs = g.prefs(ctx) })
	p.Go(func(ctx context.Context) { f.CoreActions, f.CoreSource = g.coreActions(ctx) })
	p.GoErr(func(ctx context.Context) error { return g.instances(ctx, sel, f) })
	if err := p.Wait(); err != nil {
		return nil, err
	}
	f.Account = f.Caller.Account
	if a, err := arn.Parse(f.Caller.ARN); err == nil {
		f.Partition = a.Partition
	}
	if f.Account == "" {
		for _, i := range f.Instances {
			if a := arnAccount(i.ProfileARN); a != "" {
				f.Account = a
			}
		}
	}
	if g.OnInstances != nil {
		g.OnInstances(len(f.Instances))
	}

	p = g.phase(ctx)
	g.managed(p, f)
	g.network(p, f)
	g.logging(p, f)
	g.profiles(p, f)
	if err := p.Wait(); err != nil {
		return nil, err
	}

	p = g.phase(ctx)
	attached := g.rolePolicies(p, f)
	p.Go(func(ctx context.Context) { g.caller(ctx, f) })
	g.zoneRecords(p, f)
	if err := p.Wait(); err != nil {
		return nil, err
	}

	p = g.phase(ctx)
	g.attachedPolicies(p, f, attached)
	g.remoteEndpoints(p, f)
	if err := p.Wait(); err != nil {
		return nil, err
	}

	p = g.phase(ctx)
	g.remoteNetworks(p, f)
	if err := p.Wait(); err != nil {
		return nil, err
	}
	return f, nil
}

// phase is one step of Gather: an errgroup with at most Concurrency tasks
// at once. Tasks record what they find (and their errors) in the Facts
// under mu; a task that must stop the gathering returns an error.
type phase struct {
	parent context.Context
	ctx    context.Context
	eg     *errgroup.Group
	mu     *sync.Mutex
}

func (g *Gatherer) phase(ctx context.Context) *phase {
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.Concurrency)
	return &phase{parent: ctx, ctx: ectx, eg: eg, mu: &g.factsMu}
}

// Go runs fn when a slot is free, unless the phase was cancelled.
func (p *phase) Go(fn func(ctx context.Context)) {
	p.GoErr(func(ctx context.Context) error { fn(ctx); return nil })
}

// GoErr runs fn when a slot is free; an error from fn cancels the phase
// and is what Wait returns.
func (p *phase) GoErr(fn func(ctx context.Context) error) {
	p.eg.Go(func() error {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		return fn(p.ctx)
	})
}

// Wait waits for every task and returns the first error, or the parent
// context's error when it ended meanwhile (tasks record a cancelled call
// as a fact error, which must not pass for a finding).
func (p *phase) Wait() error {
	if err := p.eg.Wait(); err != nil {
		if perr := p.parent.Err(); perr != nil {
			return perr
		}
		return err
	}
	return p.parent.Err()
}

// locked runs fn under the facts' lock.
func (p *phase) locked(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
}

func (g *Gatherer) callerIdentity(ctx context.Context, c *Caller) {
	out, err := g.Clients.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		c.Err = fmt.Errorf("sts GetCallerIdentity: %w", err)
		return
	}
	c.ARN, c.Account, c.UserID = aws.ToString(out.Arn), aws.ToString(out.Account), aws.ToString(out.UserId)
}

// partition guesses the partition from the region until the caller's ARN
// says (see Gather).
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// arnAccount is the account field of an ARN, "" if it is not one.
func arnAccount(s string) string {
	a, err := arn.Parse(s)
	if err != nil {
		return ""
	}
	return a.AccountID
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

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
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
