package doctor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// gatherOps are the calls of each Gather phase on the fake account; the
// cancellation test cancels at the first, second and last call of each.
var gatherOps = [][]string{
	{"STS.GetCallerIdentity", "SSM.GetDocument", "EC2.DescribeInstances"},
	{"SSM.DescribeInstanceInformation", "EC2.DescribeVpcs", "EC2.DescribeSubnets", "EC2.DescribeRouteTables", "EC2.DescribeVpcEndpoints",
		"EC2.DescribeSecurityGroups", "EC2.DescribeNetworkAcls", "EC2.DescribeVpcAttribute", "EC2.DescribeNatGateways", "EC2.DescribeInternetGateways", "Route53.ListHostedZonesByVPC", "S3.HeadBucket", "S3.GetBucketEncryption",
		"Logs.DescribeLogGroups", "KMS.DescribeKey", "KMS.GetKeyPolicy", "IAM.GetInstanceProfile", "SSM.GetServiceSetting", "IAM.GetRole"},
	{"IAM.ListAttachedRolePolicies", "IAM.ListRolePolicies", "IAM.GetRolePolicy", "IAM.SimulatePrincipalPolicy",
		"IAM.ListAttachedUserPolicies", "IAM.ListUserPolicies", "IAM.GetUserPolicy", "Route53.ListResourceRecordSets",
		"IAM.ListGroupsForUser", "IAM.ListAttachedGroupPolicies", "IAM.ListGroupPolicies", "IAM.GetGroupPolicy"},
	{"IAM.GetPolicy", "IAM.GetPolicyVersion", "EC2.DescribeVpcEndpoints#ids"},
	{"EC2.DescribeSubnets#ids", "EC2.DescribeSecurityGroups#ids"},
}

// gatherOrHang runs Gather and fails the test if it has not returned
// within a minute: a hang is the bug this catches, not slowness.
func gatherOrHang(t *testing.T, g *Gatherer, ctx context.Context) (*Facts, error) {
	t.Helper()
	type result struct {
		f   *Facts
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		f, err := g.Gather(ctx, Selection{All: true})
		done <- result{f, err}
	}()
	select {
	case r := <-done:
		return r.f, r.err
	case <-time.After(time.Minute):
		t.Fatal("Gather hangs after cancellation")
		return nil, nil
	}
}

func TestGatherFakeAccount(t *testing.T) {
	fa := &fakeAWS{instances: 12, vpcs: 3, roles: 6, pageSize: 1}
	g := &Gatherer{Clients: fa.clients(), Region: "us-east-1", Concurrency: 2}
	f, err := gatherOrHang(t, g, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 12 EC2 instances and the hybrid node; 6 profile roles, the default
	// host management role and the hybrid node's activation role.
	if len(f.Instances) != 13 || len(f.Managed) != 13 || len(f.VPCs) != 3 || len(f.Roles) != 8 || f.DHM == nil || f.Key == nil || !f.Bucket.Exists ||
		f.Instances[fakeHybridNode] == nil || f.Roles["hybrid-role"] == nil || f.Roles["hybrid-role"].Trust == nil {
		t.Fatalf("facts: %d instances, %d managed, %d VPCs, %d roles, DHM %v", len(f.Instances), len(f.Managed), len(f.VPCs), len(f.Roles), f.DHM)
	}
	for name, r := range f.Roles {
		// Two inline and three managed policies, read page by page.
		if r.Err != nil || len(r.Policies) != 5 {
			t.Errorf("role %s: %d policies, err %v", name, len(r.Policies), r.Err)
		}
	}
	for _, phase := range gatherOps {
		for _, op := range phase {
			if fa.calls[op] == 0 {
				t.Errorf("%s was never called: the cancellation test would not cover it", op)
			}
		}
	}
	if re := f.RemoteEndpoints[fakeHubEndpoint]; re == nil || re.VpcID != "vpc-hub" || len(re.SubnetCIDRs) != 1 || len(re.Groups) != 1 {
		t.Errorf("hub endpoint: %+v", re)
	}
	if z := f.VPCs["vpc-0"].Zones; len(z) != 1 || z[0].Aliases["ssm.us-east-1.amazonaws.com"] != fakeHubEndpoint {
		t.Errorf("zones: %+v", z)
	}
	// The caller's policies, every page: its own (1 attached, 1 inline)
	// and two groups' (1 attached and 2 inline each).
	if c := f.Caller; c.Method != "policy evaluation" || len(c.Policies) != 2+2*3 {
		t.Errorf("caller: %s, %d policies %v (%v)", c.Method, len(c.Policies), docNames(c.Policies), c.EvalErr)
	}
	if fa.calls["Route53.ListResourceRecordSets"] != 1 {
		t.Errorf("the shared zone was read %d times, want once", fa.calls["Route53.ListResourceRecordSets"])
	}
	if fa.calls["IAM.GetPolicy"] != len(fakeManaged) {
		t.Errorf("managed policies read %d times, want once each (%d)", fa.calls["IAM.GetPolicy"], len(fakeManaged))
	}
}

// TestGatherCancellation cancels the context before Gather and at the
// first, second and last call of every operation of every phase, with
// more roles than concurrency slots: Gather must return the context's
// error, no facts, never panic and never hang.
func TestGatherCancellation(t *testing.T) {
	check := func(t *testing.T, f *Facts, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) || f != nil {
			t.Fatalf("Gather = %v, %v; want context.Canceled and no facts", f != nil, err)
		}
	}
	t.Run("before Gather", func(t *testing.T) {
		fa := &fakeAWS{instances: 12, vpcs: 3, roles: 6}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		f, err := gatherOrHang(t, &Gatherer{Clients: fa.clients(), Region: "us-east-1"}, ctx)
		check(t, f, err)
		if len(fa.calls) != 0 {
			t.Errorf("calls after cancellation: %v", fa.calls)
		}
	})
	// How often each op is called on this account, to cancel at the last.
	probe := &fakeAWS{instances: 12, vpcs: 3, roles: 6, pageSize: 1}
	if _, err := gatherOrHang(t, &Gatherer{Clients: probe.clients(), Region: "us-east-1", Concurrency: 2}, context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, ops := range gatherOps {
		for _, op := range ops {
			last := probe.calls[op]
			ats := []int{1, 2, last}
			if last < 3 {
				ats = ats[:last]
			}
			for _, at := range ats {
				for _, conc := range []int{2, DefaultConcurrency} {
					t.Run(fmt.Sprintf("phase %d %s call %d concurrency %d", p+1, op, at, conc), func(t *testing.T) {
						fa := &fakeAWS{instances: 12, vpcs: 3, roles: 6, pageSize: 1}
						ctx, cancel := context.WithCancel(context.Background())
						defer cancel()
						fa.hook = func(_ context.Context, got string, n int) {
							if got == op && n == at {
								cancel()
							}
						}
						f, err := gatherOrHang(t, &Gatherer{Clients: fa.clients(), Region: "us-east-1", Concurrency: conc}, ctx)
						check(t, f, err)
					})
				}
			}
		}
	}
}
