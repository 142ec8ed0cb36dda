package doctor

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

func (t *target) callerIdentity() Check {
	c := t.f.Caller
	switch {
	case c == nil:
		return skip("the caller was not identified")
	case c.Err != nil:
		return failf("check your credentials: `aws sts get-caller-identity`", "cannot identify the caller: %s", shortErr(c.Err))
	}
	return pass("you are "+c.ARN, "Account="+c.Account)
}

func (t *target) callerStartSession() Check {
	c := t.f.Caller
	if c == nil || c.Err != nil {
		return skip("the caller was not identified")
	}
	if c.Method == "" {
		return skip("neither iam:SimulatePrincipalPolicy nor the caller's own policies could be used: %s", errText(c.EvalErr))
	}
	var bad, cond, denied []string
	var need []callerRequest
	for _, rq := range callerRequests(t.f, t.inst, t.prefs().Document) {
		var d policy.Decision
		if c.Method == "iam:SimulatePrincipalPolicy" {
			var ok bool
			d, ok = c.Simulated[rq.Action+" "+rq.Resource]
			if !ok {
				d, ok = c.Simulated[rq.Action+" "+instanceARN(t.f, "*")]
			}
			if !ok {
				cond = append(cond, rq.what+" (not simulated)")
				continue
			}
		} else {
			r := policy.Evaluate(c.Policies, rq.Request)
			d = r.Decision
			if d == policy.ExplicitDeny {
				denied = append(denied, r.By)
			}
		}
		switch d {
		case policy.Allowed:
		case policy.Conditional:
			cond = append(cond, rq.what)
		default:
			bad = append(bad, fmt.Sprintf("%s (%s on %s: %s)", rq.what, rq.Action, rq.Resource, d))
			need = append(need, rq)
		}
	}
	ev := []string{"method: " + c.Method, "not evaluated: permissions boundaries, SCPs, session policies"}
	if c.Method != "iam:SimulatePrincipalPolicy" {
		ev = append(ev, "policies: "+strings.Join(orNone(docNames(c.Policies)), ", "))
	}
	const module = "Terraform: terraform/modules/user-access (role_names or group_names) grants sessions on tagged instances"
	switch {
	case len(bad) > 0:
		ch := failf("", "you may not %s", strings.Join(bad, ", ")).with(ev...)
		if len(denied) > 0 {
			return ch.run("an explicit Deny in " + strings.Join(uniq(denied), ", ") + " decides: ask your administrator to remove it, or " + module)
		}
		if put := t.grantCaller(need); put != "" {
			return ch.run(module, put)
		}
		return ch.run(module)
	case len(cond) > 0:
		return warnf(module, "you may %s only under conditions", strings.Join(cond, ", ")).with(ev...)
	}
	return pass("you may start and end sessions on this instance", ev...)
}

func docNames(docs []policy.Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Name)
	}
	return out
}

// CallerPolicyName is the inline policy the doctor's fix gives a caller
// that may not start sessions.
const CallerPolicyName = "ssmkit-sessions"

// grantCaller returns the command that gives the caller (an IAM user or a
// role it assumed) an inline policy with exactly what it lacks; "" when
// its identity cannot hold one (an SSO role, which IAM Identity Center
// owns).
func (t *target) grantCaller(need []callerRequest) string {
	p := principalARN(t.f.Caller.ARN)
	a, err := arn.Parse(p)
	if err != nil {
		return ""
	}
	var stmts []map[string]any
	for _, rq := range need {
		res := rq.Resource
		if rq.Action == "ssm:TerminateSession" {
			res = arn.ARN{Partition: t.f.Partition, Service: "ssm", Region: t.f.Region, AccountID: t.f.Account, Resource: "session/${aws:userid}-*"}.String()
		}
		stmts = append(stmts, map[string]any{"Effect": "Allow", "Action": rq.Action, "Resource": res})
	}
	doc := jsonArg(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	name := roleName(a.Resource)
	switch {
	case strings.HasPrefix(a.Resource, "user/"):
		return cmd("aws", "iam", "put-user-policy", "--user-name", name, "--policy-name", CallerPolicyName, "--policy-document", doc)
	case strings.HasPrefix(a.Resource, "role/") && !strings.HasPrefix(name, "AWSReservedSSO_"):
		return cmd("aws", "iam", "put-role-policy", "--role-name", name, "--policy-name", CallerPolicyName, "--policy-document", doc)
	}
	return ""
}
