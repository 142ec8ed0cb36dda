package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// profiles reads each instance profile once (with its role and trust
// policy), and the default host management setting and its role when an
// EC2 instance has no profile.
func (g *Gatherer) profiles(p *phase, f *Facts) {
	needDHM := false
	for _, i := range f.Instances {
		if i.ProfileARN != "" {
			f.Profiles[i.ProfileARN] = &Profile{ARN: i.ProfileARN, Name: i.ProfileARN[strings.LastIndex(i.ProfileARN, "/")+1:]}
		} else if i.State != "hybrid" {
			needDHM = true
		}
	}
	if needDHM {
		// The profile the doctor's fix would associate: does it exist?
		f.DefaultProfile = &Profile{Name: DefaultInstanceProfile}
		p.Go(func(ctx context.Context) {
			out, err := g.Clients.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(DefaultInstanceProfile)})
			p.locked(func() {
				switch {
				case err != nil:
					f.DefaultProfile.Err = err
				case len(out.InstanceProfile.Roles) > 0:
					f.DefaultProfile.ARN, f.DefaultProfile.RoleName = aws.ToString(out.InstanceProfile.Arn), aws.ToString(out.InstanceProfile.Roles[0].RoleName)
				}
			})
		})
	}
	for _, prof := range f.Profiles {
		p.Go(func(ctx context.Context) {
			out, err := g.Clients.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(prof.Name)})
			p.locked(func() {
				if err != nil {
					prof.Err = fmt.Errorf("iam GetInstanceProfile %s: %w", prof.Name, err)
					return
				}
				if len(out.InstanceProfile.Roles) == 0 {
					return
				}
				role := out.InstanceProfile.Roles[0]
				prof.RoleName = aws.ToString(role.RoleName)
				if f.Roles[prof.RoleName] == nil {
					f.Roles[prof.RoleName] = newRole(prof.RoleName, aws.ToString(role.Arn), aws.ToString(role.AssumeRolePolicyDocument))
				}
			})
		})
	}
	if !needDHM {
		return
	}
	f.DHM = &Setting{ID: DHMSettingID}
	p.Go(func(ctx context.Context) {
		out, err := g.Clients.SSM.GetServiceSetting(ctx, &ssm.GetServiceSettingInput{SettingId: aws.String(DHMSettingID)})
		if err != nil {
			p.locked(func() { f.DHM.Err = fmt.Errorf("ssm GetServiceSetting: %w", err) })
			return
		}
		value := aws.ToString(out.ServiceSetting.SettingValue)
		p.locked(func() { f.DHM.Value = value })
		if value == "" || value == "$None" {
			return
		}
		name := value[strings.LastIndex(value, "/")+1:]
		role, err := g.Clients.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		p.locked(func() {
			switch {
			case err != nil:
				f.Roles[name] = &Role{Name: name, Err: fmt.Errorf("iam GetRole %s: %w", name, err)}
			case f.Roles[name] == nil:
				f.Roles[name] = newRole(name, aws.ToString(role.Role.Arn), aws.ToString(role.Role.AssumeRolePolicyDocument))
			}
		})
	})
}

// rolePolicies lists each role's attached policies and reads its inline
// ones. It returns the attached policy ARNs with the roles that attach
// them, filled in by the time the phase has finished.
func (g *Gatherer) rolePolicies(p *phase, f *Facts) map[string][]string {
	attached := map[string][]string{} // policy ARN → role names
	for name, role := range f.Roles {
		if role.Err != nil {
			continue
		}
		p.Go(func(ctx context.Context) {
			pg := iam.NewListAttachedRolePoliciesPaginator(g.Clients.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
			for pg.HasMorePages() {
				out, err := pg.NextPage(ctx)
				if err != nil {
					p.locked(func() { role.Err = fmt.Errorf("iam ListAttachedRolePolicies %s: %w", name, err) })
					return
				}
				p.locked(func() {
					for _, ap := range out.AttachedPolicies {
						attached[aws.ToString(ap.PolicyArn)] = append(attached[aws.ToString(ap.PolicyArn)], name)
					}
				})
			}
		})
		p.Go(func(ctx context.Context) {
			pg := iam.NewListRolePoliciesPaginator(g.Clients.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
			var inline []string
			for pg.HasMorePages() {
				out, err := pg.NextPage(ctx)
				if err != nil {
					p.locked(func() { role.Err = fmt.Errorf("iam ListRolePolicies %s: %w", name, err) })
					return
				}
				inline = append(inline, out.PolicyNames...)
			}
			for _, pn := range inline {
				out, err := g.Clients.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
				p.locked(func() {
					if err != nil {
						role.Err = fmt.Errorf("iam GetRolePolicy %s/%s: %w", name, pn, err)
					} else if d, err := policy.Parse(InlinePolicyPrefix+pn, aws.ToString(out.PolicyDocument)); err != nil {
						role.Err = err
					} else {
						role.Policies = append(role.Policies, d)
						role.PolicyNames = append(role.PolicyNames, InlinePolicyPrefix+pn)
					}
				})
			}
		})
	}
	return attached
}

// attachedPolicies reads each managed policy the roles attach, once.
func (g *Gatherer) attachedPolicies(p *phase, f *Facts, attached map[string][]string) {
	for policyARN, roles := range attached {
		p.Go(func(ctx context.Context) {
			d, err := g.managedPolicy(ctx, policyARN)
			p.locked(func() {
				for _, name := range roles {
					role := f.Roles[name]
					if err != nil {
						role.Err = err
						continue
					}
					role.Policies = append(role.Policies, d)
					role.PolicyNames = append(role.PolicyNames, policyARN)
				}
			})
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
