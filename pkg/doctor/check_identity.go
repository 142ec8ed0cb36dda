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

// DefaultInstanceProfile names the role and instance profile the doctor's
// fix creates for an instance without one (when no such profile exists
// yet; Facts.DefaultProfile says).
const DefaultInstanceProfile = "ssmkit-ssm-instance"

func (t *target) resolveRole() {
	if t.hybrid {
		if t.managed != nil && t.managed.IAMRole != "" {
			t.role, t.roleVia = t.f.Roles[roleName(t.managed.IAMRole)], "activation"
		}
		return
	}
	if arn := t.inst.ProfileARN; arn != "" {
		if p := t.f.Profiles[arn]; p != nil && p.RoleName != "" {
			t.role, t.roleVia = t.f.Roles[p.RoleName], "profile"
		}
		return
	}
	if d := t.f.DHM; d != nil && d.Err == nil && d.Value != "" && d.Value != "$None" && t.inst.HTTPTokens == "required" {
		t.role, t.roleVia = t.f.Roles[roleName(d.Value)], "dhm"
	}
}

// roleName is the name of a role given by name, path/name or ARN.
func roleName(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// trustedService is the service that must be able to assume the role.
func (t *target) trustedService() string {
	if t.roleVia == "dhm" || t.roleVia == "activation" {
		return "ssm.amazonaws.com"
	}
	return "ec2.amazonaws.com"
}

func trustPolicy(svc string) string {
	return jsonArg(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{
		{"Effect": "Allow", "Principal": map[string]string{"Service": svc}, "Action": "sts:AssumeRole"}}})
}

// newProfile returns the commands that give the instance a working
// profile: the doctor's default one when it exists, else that one created
// first (a role trusted by EC2 with the core policy, and a profile).
func (t *target) newProfile() []string {
	var cmds []string
	if t.f.DefaultProfile == nil || !t.f.DefaultProfile.exists() {
		cmds = append(cmds,
			cmd("aws", "iam", "create-role", "--role-name", DefaultInstanceProfile, "--assume-role-policy-document", trustPolicy("ec2.amazonaws.com")),
			cmd("aws", "iam", "attach-role-policy", "--role-name", DefaultInstanceProfile, "--policy-arn", CorePolicyARN),
			cmd("aws", "iam", "create-instance-profile", "--instance-profile-name", DefaultInstanceProfile),
			cmd("aws", "iam", "add-role-to-instance-profile", "--instance-profile-name", DefaultInstanceProfile, "--role-name", DefaultInstanceProfile))
	}
	return append(cmds, cmd("aws", "ec2", "associate-iam-instance-profile", "--instance-id", t.inst.ID, "--iam-instance-profile", "Name="+DefaultInstanceProfile))
}

const profileModules = "Terraform: terraform/modules/instance-role, or default host management (terraform/modules/default-host-management) with IMDSv2 required"

func (t *target) identityProfile() Check {
	if t.hybrid {
		switch {
		case t.managed == nil:
			return skip("hybrid managed node not registered (see agent.online)")
		case t.managed.IAMRole == "":
			return skip("hybrid managed node: its activation's role is not reported")
		}
		return pass("hybrid managed node registered with role "+t.managed.IAMRole+" (its activation's role)", "IamRole="+t.managed.IAMRole)
	}
	if arn := t.inst.ProfileARN; arn != "" {
		p := t.f.Profiles[arn]
		switch {
		case p == nil:
			return skip("instance profile %s was not read", arn)
		case p.Err != nil && apiCode(p.Err) == "NoSuchEntity":
			return failf("", "instance profile %s does not exist", p.Name).run(profileModules, t.newProfile()...)
		case p.Err != nil:
			return skip("cannot read instance profile %s: %s", p.Name, shortErr(p.Err))
		case p.RoleName == "":
			return failf("", "instance profile %s has no role", p.Name).run(profileModules,
				cmd("aws", "iam", "create-role", "--role-name", p.Name, "--assume-role-policy-document", trustPolicy("ec2.amazonaws.com")),
				cmd("aws", "iam", "attach-role-policy", "--role-name", p.Name, "--policy-arn", CorePolicyARN),
				cmd("aws", "iam", "add-role-to-instance-profile", "--instance-profile-name", p.Name, "--role-name", p.Name))
		}
		return pass(fmt.Sprintf("instance profile %s with role %s", p.Name, p.RoleName), "IamInstanceProfile="+arn)
	}
	d := t.f.DHM
	switch {
	case d == nil:
		return failf("", "the instance has no instance profile").run(profileModules, t.newProfile()...)
	case d.Err != nil:
		return failf("", "the instance has no instance profile, and default host management could not be read: %s", shortErr(d.Err)).
			run(profileModules, t.newProfile()...)
	case d.Value == "" || d.Value == "$None":
		return failf("", "the instance has no instance profile and default host management is off").with(DHMSettingID+"="+d.Value).
			run(profileModules, t.newProfile()...)
	case t.inst.HTTPTokens != "required":
		return failf("", "no instance profile; default host management is on but needs IMDSv2 only (HttpTokens=%s)", t.inst.HTTPTokens).
			run("", cmd("aws", "ec2", "modify-instance-metadata-options", "--instance-id", t.inst.ID, "--http-tokens", "required"))
	}
	return pass("no instance profile; default host management uses role "+d.Value, DHMSettingID+"="+d.Value, "HttpTokens=required")
}

func (t *target) identityTrust() Check {
	if t.role == nil {
		if t.hybrid && t.managed != nil && t.managed.IAMRole != "" {
			return skip("role %s was not read", t.managed.IAMRole)
		}
		return skip("no role to check")
	}
	r := t.role
	if r.Trust == nil {
		return skip("cannot read the trust policy of %s: %s", r.Name, errText(r.Err))
	}
	svc := t.trustedService()
	fix := cmd("aws", "iam", "update-assume-role-policy", "--role-name", r.Name, "--policy-document", trustPolicy(svc))
	switch policy.Evaluate([]policy.Document{*r.Trust}, policy.Request{Action: "sts:AssumeRole", Principal: "Service:" + svc}).Decision {
	case policy.Allowed:
		return pass(fmt.Sprintf("role %s trusts %s", r.Name, svc))
	case policy.Conditional:
		return warnf("", "role %s trusts %s only under a condition", r.Name, svc).run("", fix)
	}
	c := failf("", "role %s does not trust %s", r.Name, svc)
	if t.roleVia == "activation" {
		c.Summary += ": the hybrid node cannot get credentials"
	}
	return c.run("", fix)
}

// roleRequests are the core actions with the resources the agent asks for.
func (t *target) coreRequest(a string) policy.Request {
	res := "*"
	if strings.HasPrefix(a, "ssm:") {
		res = instanceARN(t.f, t.inst.ID)
	}
	return policy.Request{Action: a, Resource: res}
}

func (t *target) identityCorePolicy() Check {
	if t.role == nil {
		return skip("no role to check")
	}
	r := t.role
	if r.Err != nil {
		return skip("cannot read the policies of role %s: %s", r.Name, shortErr(r.Err))
	}
	attach := cmd("aws", "iam", "attach-role-policy", "--role-name", r.Name, "--policy-arn", CorePolicyARN)
	const module = "Terraform: terraform/modules/instance-role"
	var denied, conditional, missing, otherMissing []string
	var denies []policy.Result
	for _, a := range sessionActions {
		switch d := policy.Evaluate(r.Policies, t.coreRequest(a)); d.Decision {
		case policy.Allowed:
		case policy.Conditional:
			conditional = append(conditional, a+" ("+d.By+")")
		case policy.ExplicitDeny:
			denied = append(denied, a)
			denies = append(denies, policy.Denies(r.Policies, t.coreRequest(a))...)
		default:
			missing = append(missing, a)
		}
	}
	for _, a := range t.f.CoreActions {
		if contains(sessionActions, a) {
			continue
		}
		if policy.Evaluate(r.Policies, policy.Request{Action: a, Resource: "*"}).Decision != policy.Allowed &&
			policy.Evaluate(r.Policies, t.coreRequest(a)).Decision != policy.Allowed {
			otherMissing = append(otherMissing, a)
		}
	}
	ev := []string{"policies: " + strings.Join(orNone(r.PolicyNames), ", "), "core actions from " + t.f.CoreSource,
		"not evaluated: permissions boundaries, SCPs"}
	switch {
	case len(denied) > 0:
		summary, cmds := t.removeDenies(r, denies)
		c := failf("", "role %s denies %s: %s", r.Name, strings.Join(denied, ", "), summary).with(ev...)
		if len(missing) > 0 {
			c.Summary += fmt.Sprintf("; it does not allow %s either", strings.Join(missing, ", "))
			cmds = append(cmds, attach)
		}
		return c.run("", cmds...)
	case len(missing) > 0:
		return failf("", "role %s does not allow %s", r.Name, strings.Join(missing, ", ")).with(ev...).run(module, attach)
	case len(conditional) > 0:
		return warnf("", "role %s allows %s only under conditions", r.Name, strings.Join(conditional, ", ")).with(ev...).run(module, attach)
	case len(otherMissing) > 0:
		return warnf("", "role %s allows sessions but not %d other actions of AmazonSSMManagedInstanceCore (Run Command, inventory): %s",
			r.Name, len(otherMissing), strings.Join(otherMissing, ", ")).with(ev...).run(module, attach)
	}
	return pass(fmt.Sprintf("role %s grants what AmazonSSMManagedInstanceCore grants", r.Name), ev...)
}

// removeDenies names the statements that deny and returns the commands
// that remove them: an inline policy is rewritten without them (deleted
// when nothing is left), a customer managed policy gets a new default
// version without them (detached when nothing is left), an AWS managed
// policy is detached.
func (t *target) removeDenies(r *Role, denies []policy.Result) (string, []string) {
	byDoc := map[string][]int{}
	var order []string
	for _, d := range denies {
		if _, ok := byDoc[d.Document]; !ok {
			order = append(order, d.Document)
		}
		if !containsInt(byDoc[d.Document], d.Index) {
			byDoc[d.Document] = append(byDoc[d.Document], d.Index)
		}
	}
	var named, cmds []string
	for _, name := range order {
		var doc policy.Document
		for _, d := range r.Policies {
			if d.Name == name {
				doc = d
			}
		}
		var stmts []string
		for _, i := range byDoc[name] {
			if sid := doc.Statements[i].Sid; sid != "" {
				stmts = append(stmts, "Sid "+sid)
			} else {
				stmts = append(stmts, fmt.Sprintf("statement %d", i+1))
			}
		}
		rest, left := policy.Without(doc, byDoc[name]...)
		inline, isInline := strings.CutPrefix(name, InlinePolicyPrefix)
		switch {
		case isInline:
			named = append(named, fmt.Sprintf("inline policy %s (%s)", inline, strings.Join(stmts, ", ")))
			if left == 0 {
				cmds = append(cmds, cmd("aws", "iam", "delete-role-policy", "--role-name", r.Name, "--policy-name", inline))
			} else {
				cmds = append(cmds, cmd("aws", "iam", "put-role-policy", "--role-name", r.Name, "--policy-name", inline, "--policy-document", rest))
			}
		case strings.HasPrefix(name, "arn:") && strings.Contains(name, ":iam::aws:policy/"):
			named = append(named, fmt.Sprintf("AWS managed policy %s (%s)", name, strings.Join(stmts, ", ")))
			cmds = append(cmds, cmd("aws", "iam", "detach-role-policy", "--role-name", r.Name, "--policy-arn", name))
		default:
			named = append(named, fmt.Sprintf("managed policy %s (%s)", name, strings.Join(stmts, ", ")))
			if left == 0 {
				cmds = append(cmds, cmd("aws", "iam", "detach-role-policy", "--role-name", r.Name, "--policy-arn", name))
			} else {
				// A new default version changes the policy for every
				// principal it is attached to, as removing the statement
				// by hand would.
				cmds = append(cmds, cmd("aws", "iam", "create-policy-version", "--policy-arn", name, "--policy-document", rest, "--set-as-default"))
			}
		}
	}
	return "denied by " + strings.Join(named, " and "), cmds
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
