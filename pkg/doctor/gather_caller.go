package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

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

func (g *Gatherer) callerPolicies(ctx context.Context, principal string) ([]policy.Document, error) {
	a, err := arn.Parse(principal)
	if err != nil {
		return nil, errors.New("the caller is not an IAM user or role")
	}
	res := a.Resource
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
		if d, err := policy.Parse(InlinePolicyPrefix+pn, aws.ToString(doc)); err == nil {
			docs = append(docs, d)
		}
	}
	return docs, nil
}
