package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// callerRequest is one thing the caller must be allowed to do.
type callerRequest struct {
	policy.Request
	// what names it in findings.
	what string
}

// documentARN is the ARN of an SSM document as AWS forms it: documents an
// account owns carry its ID, AWS-owned ones (AWS-…) none.
func documentARN(f *Facts, name string) string {
	return ssmdoc.ARN(f.Partition, f.Region, f.Account, name)
}

// callerContext is the request context of the caller's own calls.
func callerContext(f *Facts) map[string][]string {
	ctx := map[string][]string{"ssm:SessionDocumentAccessCheck": {"true"}, "aws:PrincipalAccount": {f.Account}}
	if c := f.Caller; c != nil {
		if c.UserID != "" {
			ctx["aws:userid"] = []string{c.UserID}
		}
		if a, err := arn.Parse(c.ARN); err == nil && strings.HasPrefix(a.Resource, "user/") {
			ctx["aws:username"] = []string{roleName(a.Resource)}
		}
		if p := principalARN(c.ARN); p != "" {
			ctx["aws:PrincipalArn"] = []string{p}
		}
	}
	return ctx
}

// callerRequests are what the caller needs to open and end sessions on
// inst (nil: any instance, for the simulation of fleets): start a session
// on the instance with the preferences document, end their own sessions,
// and use the preferences' key.
func callerRequests(f *Facts, inst *Instance, document string) []callerRequest {
	ctx := callerContext(f)
	start := policy.Request{Action: "ssm:StartSession", Resource: instanceARN(f, "*"), Context: ctx}
	if inst != nil {
		start.Resource = instanceARN(f, inst.ID)
		// Tag conditions: the instance's tags are all there is.
		tctx := map[string][]string{}
		for k, v := range ctx {
			tctx[k] = v
		}
		for k, v := range inst.Tags {
			tctx["ssm:resourceTag/"+k] = []string{v}
			tctx["aws:ResourceTag/"+k] = []string{v}
		}
		start.Context, start.AbsentPrefixes = tctx, []string{"ssm:resourceTag/", "aws:ResourceTag/"}
	}
	session := arn.ARN{Partition: f.Partition, Service: "ssm", Region: f.Region, AccountID: f.Account,
		Resource: "session/" + sessionPrefix(f.Caller) + "-0123456789abcdef0"}.String()
	reqs := []callerRequest{
		{Request: start, what: "start a session on the instance"},
		{Request: policy.Request{Action: "ssm:StartSession", Resource: documentARN(f, document), Context: ctx}, what: "use document " + document},
		{Request: policy.Request{Action: "ssm:TerminateSession", Resource: session, Context: ctx}, what: "end your sessions"},
	}
	if f.Key != nil && f.Key.ARN != "" {
		reqs = append(reqs, callerRequest{Request: policy.Request{Action: "kms:GenerateDataKey", Resource: f.Key.ARN, Context: ctx}, what: "encrypt with key " + f.Key.ID})
	}
	return reqs
}

// sessionPrefix is how the caller's session IDs start: the user ID that
// ${aws:userid} stands for in the user-access module's policy.
func sessionPrefix(c *Caller) string {
	if c == nil || c.UserID == "" {
		return "caller"
	}
	return c.UserID
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
	reqs := callerRequests(f, nil, g.Document)
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
		for _, rq := range reqs[1:] {
			if ok {
				simulate([]string{rq.Action}, []string{rq.Resource})
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
func principalARN(caller string) string {
	a, err := arn.Parse(caller)
	if err != nil {
		return ""
	}
	switch {
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/"):
		role, _, _ := strings.Cut(strings.TrimPrefix(a.Resource, "assumed-role/"), "/")
		return arn.ARN{Partition: a.Partition, Service: "iam", AccountID: a.AccountID, Resource: "role/" + role}.String()
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "user/"):
		// moto's (and the sandbox's) caller identity.
		return arn.ARN{Partition: a.Partition, Service: "iam", AccountID: a.AccountID, Resource: a.Resource}.String()
	case a.Service == "iam":
		return caller
	}
	return ""
}

// callerPolicies reads the identity policies of the caller (a user or a
// role), every page: attached and inline, and for a user those of every
// group it belongs to.
func (g *Gatherer) callerPolicies(ctx context.Context, principal string) ([]policy.Document, error) {
	a, err := arn.Parse(principal)
	if err != nil {
		return nil, errors.New("the caller is not an IAM user or role")
	}
	name := roleName(a.Resource)
	var docs []policy.Document
	addManaged := func(arns []string) error {
		for _, arn := range arns {
			d, err := g.managedPolicy(ctx, arn)
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		return nil
	}
	addInline := func(prefix string, names []string, get func(string) (*string, error)) error {
		for _, pn := range names {
			doc, err := get(pn)
			if err != nil {
				return err
			}
			d, err := policy.Parse(prefix+InlinePolicyPrefix+pn, aws.ToString(doc))
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
		return nil
	}
	switch {
	case strings.HasPrefix(a.Resource, "role/"):
		arns, err := collect(ctx, iam.NewListAttachedRolePoliciesPaginator(g.Clients.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)}),
			func(o *iam.ListAttachedRolePoliciesOutput) []string { return policyARNs(o.AttachedPolicies) })
		if err != nil {
			return nil, err
		}
		inline, err := collect(ctx, iam.NewListRolePoliciesPaginator(g.Clients.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(name)}),
			func(o *iam.ListRolePoliciesOutput) []string { return o.PolicyNames })
		if err != nil {
			return nil, err
		}
		if err := addManaged(arns); err != nil {
			return nil, err
		}
		return docs, addInline("", inline, func(pn string) (*string, error) {
			out, err := g.Clients.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		})
	case strings.HasPrefix(a.Resource, "user/"):
		arns, err := collect(ctx, iam.NewListAttachedUserPoliciesPaginator(g.Clients.IAM, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)}),
			func(o *iam.ListAttachedUserPoliciesOutput) []string { return policyARNs(o.AttachedPolicies) })
		if err != nil {
			return nil, err
		}
		inline, err := collect(ctx, iam.NewListUserPoliciesPaginator(g.Clients.IAM, &iam.ListUserPoliciesInput{UserName: aws.String(name)}),
			func(o *iam.ListUserPoliciesOutput) []string { return o.PolicyNames })
		if err != nil {
			return nil, err
		}
		if err := addManaged(arns); err != nil {
			return nil, err
		}
		if err := addInline("", inline, func(pn string) (*string, error) {
			out, err := g.Clients.IAM.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		}); err != nil {
			return nil, err
		}
		// The user-access module grants through groups as often as
		// through users: their policies count too.
		groups, err := collect(ctx, iam.NewListGroupsForUserPaginator(g.Clients.IAM, &iam.ListGroupsForUserInput{UserName: aws.String(name)}),
			func(o *iam.ListGroupsForUserOutput) []string {
				var out []string
				for _, gr := range o.Groups {
					out = append(out, aws.ToString(gr.GroupName))
				}
				return out
			})
		if err != nil {
			return nil, err
		}
		for _, group := range groups {
			arns, err := collect(ctx, iam.NewListAttachedGroupPoliciesPaginator(g.Clients.IAM, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String(group)}),
				func(o *iam.ListAttachedGroupPoliciesOutput) []string { return policyARNs(o.AttachedPolicies) })
			if err != nil {
				return nil, err
			}
			inline, err := collect(ctx, iam.NewListGroupPoliciesPaginator(g.Clients.IAM, &iam.ListGroupPoliciesInput{GroupName: aws.String(group)}),
				func(o *iam.ListGroupPoliciesOutput) []string { return o.PolicyNames })
			if err != nil {
				return nil, err
			}
			if err := addManaged(arns); err != nil {
				return nil, err
			}
			if err := addInline("group:"+group+"/", inline, func(pn string) (*string, error) {
				out, err := g.Clients.IAM.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(group), PolicyName: aws.String(pn)})
				if err != nil {
					return nil, err
				}
				return out.PolicyDocument, nil
			}); err != nil {
				return nil, err
			}
		}
		return docs, nil
	}
	return nil, fmt.Errorf("cannot read the policies of %s", principal)
}

// iamPager is an aws-sdk-go-v2 IAM paginator.
type iamPager[T any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*iam.Options)) (T, error)
}

// collect drains a paginator, keeping what items takes from each page.
func collect[T any](ctx context.Context, p iamPager[T], items func(T) []string) ([]string, error) {
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
	}
	return out, nil
}

func policyARNs(ps []iamtypes.AttachedPolicy) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, aws.ToString(p.PolicyArn))
	}
	return out
}
