package sessiontest

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EC2 is a fake DescribeInstances over running instances by Name tag.
type EC2 struct {
	// Names maps a Name tag to the IDs of the running instances with it.
	Names map[string][]string
	// Err, when set, is returned by every call.
	Err error

	calls atomic.Int32
}

// Calls returns the number of DescribeInstances calls.
func (e *EC2) Calls() int { return int(e.calls.Load()) }

// DescribeInstances answers tag:Name filters from Names.
func (e *EC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	e.calls.Add(1)
	if e.Err != nil {
		return nil, e.Err
	}
	out := &ec2.DescribeInstancesOutput{}
	for _, f := range in.Filters {
		if aws.ToString(f.Name) != "tag:Name" {
			continue
		}
		for _, name := range f.Values {
			var r ec2types.Reservation
			for _, id := range e.Names[name] {
				r.Instances = append(r.Instances, ec2types.Instance{InstanceId: aws.String(id), Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}})
			}
			if len(r.Instances) > 0 {
				out.Reservations = append(out.Reservations, r)
			}
		}
	}
	return out, nil
}
