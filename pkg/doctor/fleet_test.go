package doctor_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
)

// TestFleetScale gathers facts for 1,000 instances over 10 VPCs and 5
// roles and reports the API calls per operation and the wall time. The
// call count must not grow with instances; the time is printed, not
// asserted.
func TestFleetScale(t *testing.T) {
	if testing.Short() {
		t.Skip("launches 1,000 instances in moto")
	}
	const vpcs, roles, perVPC = 10, 5, 100
	w := newWorld(t, []sandbox.InstanceSpec{})
	var profiles []string
	for r := range roles {
		profiles = append(profiles, w.role(fmt.Sprintf("fleet-role-%d", r), []string{fleet.CorePolicyARN}, nil))
	}
	setup := time.Now()
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for v := range vpcs {
		vpc, err := w.ec2.CreateVpc(w.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", 100+v))})
		w.must(err, "CreateVpc")
		sub, err := w.ec2.CreateSubnet(w.ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.%d.1.0/24", 100+v))})
		w.must(err, "CreateSubnet")
		wg.Go(func() {
			out, err := w.ec2.RunInstances(w.ctx, &ec2.RunInstancesInput{ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
				MinCount: aws.Int32(perVPC), MaxCount: aws.Int32(perVPC), SubnetId: sub.Subnet.SubnetId,
				IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profiles[v%roles])},
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
					Tags: []ec2types.Tag{{Key: aws.String("fleet"), Value: aws.String("bench")}}}}})
			if err != nil {
				t.Errorf("RunInstances: %v", err)
				return
			}
			for n, i := range out.Instances {
				if n > 0 {
					// moto attaches the profile to the first instance of
					// a batch only.
					_, err := w.ec2.AssociateIamInstanceProfile(w.ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: i.InstanceId,
						IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profiles[v%roles])}})
					if err != nil {
						t.Errorf("AssociateIamInstanceProfile: %v", err)
						return
					}
				}
				mu.Lock()
				ids = append(ids, aws.ToString(i.InstanceId))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		w.register(id)
	}
	t.Logf("setup: %d instances in %s", len(ids), time.Since(setup).Round(time.Millisecond))

	var cc awsapi.CallCounter
	g := &doctor.Gatherer{Clients: doctor.NewClients(cc.Instrument(w.cfg)), Region: w.sb.Region()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	f, err := g.Gather(ctx, doctor.Selection{Tags: map[string][]string{"fleet": {"bench"}}})
	w.must(err, "Gather")
	rep := doctor.Run(f, time.Now())
	elapsed := time.Since(start)

	counts := cc.Counts()
	ops := awsapi.SortedOps(counts)
	sort.Strings(ops)
	for _, op := range ops {
		t.Logf("  %-40s %d", op, counts[op])
	}
	t.Logf("fleet: %d instances, %d VPCs, %d roles: %d API calls, %s wall time (gather + checks)",
		len(rep.Instances), len(f.VPCs), len(f.Roles), cc.Total(), elapsed.Round(time.Millisecond))
	fails := map[string]int{}
	for _, ir := range rep.Instances {
		for _, c := range ir.Checks {
			if c.Status == doctor.Fail {
				fails[c.ID]++
			}
		}
	}
	t.Logf("failing checks: %v", fails)
	if len(rep.Instances) != vpcs*perVPC {
		t.Errorf("%d instances checked, want %d", len(rep.Instances), vpcs*perVPC)
	}
	if len(f.Managed) != vpcs*perVPC {
		t.Errorf("%d managed instances found, want %d", len(f.Managed), vpcs*perVPC)
	}
	if cc.Total() >= 100 {
		t.Errorf("%d API calls, want fewer than 100", cc.Total())
	}
}
