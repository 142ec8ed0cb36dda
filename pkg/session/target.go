package session

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EC2API is the part of the EC2 client that ResolveTarget needs.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// targetIDRE matches EC2 instance IDs and hybrid managed node IDs.
var targetIDRE = regexp.MustCompile(`^(?:i|mi)-[0-9a-f]{8,17}$`)

// IsTargetID reports whether target is an instance or managed node ID
// rather than a name.
func IsTargetID(target string) bool { return targetIDRE.MatchString(target) }

// ResolveTarget turns what the user typed into a target ID: i-… and mi-…
// IDs as they are, anything else as the Name tag of exactly one running
// EC2 instance.
func ResolveTarget(ctx context.Context, api EC2API, target string) (string, error) {
	if target == "" {
		return "", fmt.Errorf("no target given")
	}
	if IsTargetID(target) {
		return target, nil
	}
	if api == nil {
		return "", fmt.Errorf("%q is not an instance ID (i-…) or managed node ID (mi-…)", target)
	}
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:Name"), Values: []string{target}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}}
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("looking up instances named %q: %w", target, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				if id := aws.ToString(inst.InstanceId); id != "" {
					ids = append(ids, id)
				}
			}
		}
	}
	sort.Strings(ids)
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no running instance has the Name tag %q: give an instance ID (i-…) or check --region", target)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d running instances have the Name tag %q (%s): give one instance ID instead", len(ids), target, strings.Join(ids, ", "))
}
