package doctor

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

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
