package doctor

import (
	"fmt"
	"strings"

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
	reqs := [][2]string{{"ssm:StartSession", instanceARN(t.f, t.inst.ID)}}
	reqs = append(reqs, callerRequests(t.f)...)
	var bad, cond []string
	for _, rq := range reqs {
		var d policy.Decision
		if c.Method == "iam:SimulatePrincipalPolicy" {
			var ok bool
			d, ok = c.Simulated[rq[0]+" "+rq[1]]
			if !ok {
				d, ok = c.Simulated[rq[0]+" "+instanceARN(t.f, "*")]
			}
			if !ok {
				cond = append(cond, rq[0]+" (not simulated)")
				continue
			}
		} else {
			d = policy.Evaluate(c.Policies, policy.Request{Action: rq[0], Resource: rq[1]}).Decision
		}
		switch d {
		case policy.Allowed:
		case policy.Conditional:
			cond = append(cond, rq[0])
		default:
			bad = append(bad, fmt.Sprintf("%s on %s (%s)", rq[0], rq[1], d))
		}
	}
	ev := []string{"method: " + c.Method, "not evaluated: permissions boundaries, SCPs, session policies"}
	fix := "Terraform: terraform/modules/user-access (role_names or group_names) grants sessions on tagged instances"
	if len(bad) > 0 {
		return failf(fix, "you may not %s", strings.Join(bad, ", ")).with(ev...)
	}
	if len(cond) > 0 {
		return warnf(fix, "you may %s only under conditions", strings.Join(cond, ", ")).with(ev...)
	}
	return pass("you may start and end sessions on this instance", ev...)
}
