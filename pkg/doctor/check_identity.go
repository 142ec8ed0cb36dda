package doctor

import (
	"fmt"
	"strings"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// sessionActions are what the agent's role must allow for sessions; the
// rest of AmazonSSMManagedInstanceCore serves Run Command and inventory.
var sessionActions = []string{
	"ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
}

func (t *target) resolveRole() {
	if t.hybrid {
		return
	}
	if arn := t.inst.ProfileARN; arn != "" {
		if p := t.f.Profiles[arn]; p != nil && p.RoleName != "" {
			t.role, t.roleVia = t.f.Roles[p.RoleName], "profile"
		}
		return
	}
	if d := t.f.DHM; d != nil && d.Err == nil && d.Value != "" && d.Value != "$None" && t.inst.HTTPTokens == "required" {
		t.role, t.roleVia = t.f.Roles[d.Value[strings.LastIndex(d.Value, "/")+1:]], "dhm"
	}
}

func (t *target) identityProfile() Check {
	if t.hybrid {
		return skip("hybrid managed node: its activation's role applies")
	}
	id := t.inst.ID
	profileFix := fmt.Sprintf("aws ec2 associate-iam-instance-profile --instance-id %s --iam-instance-profile Name=<profile> "+
		"(create one with the ssmkit Terraform module terraform/modules/instance-role), or turn on default host management "+
		"(terraform/modules/default-host-management) and require IMDSv2", id)
	if arn := t.inst.ProfileARN; arn != "" {
		p := t.f.Profiles[arn]
		switch {
		case p == nil:
			return skip("instance profile %s was not read", arn)
		case p.Err != nil && apiCode(p.Err) == "NoSuchEntity":
			return failf(profileFix, "instance profile %s does not exist", p.Name)
		case p.Err != nil:
			return skip("cannot read instance profile %s: %s", p.Name, shortErr(p.Err))
		case p.RoleName == "":
			return failf(fmt.Sprintf("aws iam add-role-to-instance-profile --instance-profile-name %s --role-name <role>", p.Name),
				"instance profile %s has no role", p.Name)
		}
		return pass(fmt.Sprintf("instance profile %s with role %s", p.Name, p.RoleName), "IamInstanceProfile="+arn)
	}
	d := t.f.DHM
	switch {
	case d == nil:
		return failf(profileFix, "the instance has no instance profile")
	case d.Err != nil:
		return failf(profileFix, "the instance has no instance profile, and default host management could not be read: %s", shortErr(d.Err))
	case d.Value == "" || d.Value == "$None":
		return failf(profileFix, "the instance has no instance profile and default host management is off").with(DHMSettingID + "=" + d.Value)
	case t.inst.HTTPTokens != "required":
		return failf(fmt.Sprintf("aws ec2 modify-instance-metadata-options --instance-id %s --http-tokens required", id),
			"no instance profile; default host management is on but needs IMDSv2 only (HttpTokens=%s)", t.inst.HTTPTokens)
	}
	return pass("no instance profile; default host management uses role "+d.Value, DHMSettingID+"="+d.Value, "HttpTokens=required")
}

func (t *target) identityTrust() Check {
	if t.role == nil {
		return skip("no role to check")
	}
	r := t.role
	if r.Trust == nil {
		return skip("cannot read the trust policy of %s: %s", r.Name, errText(r.Err))
	}
	svc := "ec2.amazonaws.com"
	if t.roleVia == "dhm" {
		svc = "ssm.amazonaws.com"
	}
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"%s"},"Action":"sts:AssumeRole"}]}`, svc)
	fix := fmt.Sprintf("aws iam update-assume-role-policy --role-name %s --policy-document '%s'", r.Name, trust)
	switch policy.Evaluate([]policy.Document{*r.Trust}, policy.Request{Action: "sts:AssumeRole", Principal: "Service:" + svc}).Decision {
	case policy.Allowed:
		return pass(fmt.Sprintf("role %s trusts %s", r.Name, svc))
	case policy.Conditional:
		return warnf(fix, "role %s trusts %s only under a condition", r.Name, svc)
	}
	return failf(fix, "role %s does not trust %s", r.Name, svc)
}

func (t *target) identityCorePolicy() Check {
	if t.role == nil {
		return skip("no role to check")
	}
	r := t.role
	if r.Err != nil {
		return skip("cannot read the policies of role %s: %s", r.Name, shortErr(r.Err))
	}
	fix := fmt.Sprintf("aws iam attach-role-policy --role-name %s --policy-arn %s (Terraform: terraform/modules/instance-role)", r.Name, CorePolicyARN)
	instARN := instanceARN(t.f, t.inst.ID)
	var denied, conditional, otherMissing []string
	for _, a := range sessionActions {
		res := "*"
		if a == "ssm:UpdateInstanceInformation" {
			res = instARN
		}
		switch d := policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: res}); d.Decision {
		case policy.Allowed:
		case policy.Conditional:
			conditional = append(conditional, a+" ("+d.By+")")
		default:
			denied = append(denied, a+" ("+d.Decision.String()+")")
		}
	}
	for _, a := range t.f.CoreActions {
		if contains(sessionActions, a) {
			continue
		}
		res := "*"
		if strings.HasPrefix(a, "ssm:") {
			res = instARN
		}
		if policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: "*"}).Decision != policy.Allowed && policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: res}).Decision != policy.Allowed {
			otherMissing = append(otherMissing, a)
		}
	}
	ev := []string{"policies: " + strings.Join(orNone(r.PolicyNames), ", "), "core actions from " + t.f.CoreSource,
		"not evaluated: permissions boundaries, SCPs"}
	switch {
	case len(denied) > 0:
		return failf(fix, "role %s does not allow %s", r.Name, strings.Join(denied, ", ")).with(ev...)
	case len(conditional) > 0:
		return warnf(fix, "role %s allows %s only under conditions", r.Name, strings.Join(conditional, ", ")).with(ev...)
	case len(otherMissing) > 0:
		return warnf(fix, "role %s allows sessions but not %d other actions of AmazonSSMManagedInstanceCore (Run Command, inventory): %s",
			r.Name, len(otherMissing), strings.Join(otherMissing, ", ")).with(ev...)
	}
	return pass(fmt.Sprintf("role %s grants what AmazonSSMManagedInstanceCore grants", r.Name), ev...)
}
