package target

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// SSMAPI is the part of the SSM client this package uses.
type SSMAPI interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// EC2API is the part of the EC2 client this package uses.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Page sizes: DescribeInstanceInformation returns at most 50 per page;
// DescribeInstances takes at most 1000 instance IDs per call.
const (
	infoPageSize     = 50
	describeIDsBatch = 1000
)

// ResourceTypeManagedInstance is the SSM resource type of hybrid nodes.
const ResourceTypeManagedInstance = string(ssmtypes.ResourceTypeManagedInstance)

// Node is a managed node (or an EC2 instance a name resolved to) with what
// people recognise it by.
type Node struct {
	ID string
	// Name is the EC2 Name tag, or the name SSM knows a hybrid node by.
	Name string
	// ComputerName is the host name the agent reports.
	ComputerName    string
	PingStatus      string
	AgentVersion    string
	PlatformType    string
	PlatformName    string
	PlatformVersion string
	IPAddress       string
	// ResourceType is EC2Instance or ManagedInstance.
	ResourceType string
	LastPing     *time.Time
	// EC2State is the instance state EC2 reports ("running", "stopped",
	// "terminated"…); empty for hybrid nodes and when EC2 was not asked.
	EC2State string
}

// DisplayName is the name people know the node by: its Name, or else its
// computer name.
func (n Node) DisplayName() string {
	if n.Name != "" {
		return n.Name
	}
	return n.ComputerName
}

// Label is how messages name the node: "name (id)", or the ID alone.
func (n Node) Label() string {
	if name := n.DisplayName(); name != "" && name != n.ID {
		return name + " (" + n.ID + ")"
	}
	return n.ID
}

// ListNodes returns the managed nodes matching filters (nil for all), with
// the Name tag and state of each EC2 instance from DescribeInstances,
// sorted by display name and then ID. ec2API may be nil to skip the names.
//
// Calls: one DescribeInstanceInformation per 50 nodes and one
// DescribeInstances per 1000 instances (plus one retry of a batch in
// which EC2 no longer knows some instance).
func ListNodes(ctx context.Context, ssmAPI SSMAPI, ec2API EC2API, filters []ssmtypes.InstanceInformationStringFilter) ([]Node, error) {
	nodes, err := managedNodes(ctx, ssmAPI, filters)
	if err != nil {
		return nil, err
	}
	if ec2API != nil {
		var ids []string
		for _, n := range nodes {
			if IsInstanceID(n.ID) {
				ids = append(ids, n.ID)
			}
		}
		details, err := ec2Details(ctx, ec2API, ids)
		if err != nil {
			return nil, err
		}
		for i := range nodes {
			if d, ok := details[nodes[i].ID]; ok {
				if d.Name != "" {
					nodes[i].Name = d.Name
				}
				nodes[i].EC2State = d.EC2State
			}
		}
	}
	sortNodes(nodes)
	return nodes, nil
}

func sortNodes(nodes []Node) {
	sort.SliceStable(nodes, func(i, j int) bool {
		if a, b := nodes[i].DisplayName(), nodes[j].DisplayName(); a != b {
			return a < b
		}
		return nodes[i].ID < nodes[j].ID
	})
}

// managedNodes lists DescribeInstanceInformation page by page.
func managedNodes(ctx context.Context, api SSMAPI, filters []ssmtypes.InstanceInformationStringFilter) ([]Node, error) {
	var nodes []Node
	in := &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(infoPageSize)}
	p := ssm.NewDescribeInstanceInformationPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing managed nodes: %w", err)
		}
		for _, ii := range page.InstanceInformationList {
			nodes = append(nodes, nodeFromInfo(ii))
		}
	}
	return nodes, nil
}

func nodeFromInfo(ii ssmtypes.InstanceInformation) Node {
	return Node{
		ID: aws.ToString(ii.InstanceId), Name: aws.ToString(ii.Name), ComputerName: aws.ToString(ii.ComputerName),
		PingStatus: string(ii.PingStatus), AgentVersion: aws.ToString(ii.AgentVersion),
		PlatformType: string(ii.PlatformType), PlatformName: aws.ToString(ii.PlatformName),
		PlatformVersion: aws.ToString(ii.PlatformVersion), IPAddress: aws.ToString(ii.IPAddress),
		ResourceType: string(ii.ResourceType), LastPing: ii.LastPingDateTime,
	}
}

func nodeFromInstance(inst ec2types.Instance) Node {
	n := Node{
		ID: aws.ToString(inst.InstanceId), IPAddress: aws.ToString(inst.PrivateIpAddress),
		ResourceType: string(ssmtypes.ResourceTypeEc2Instance), PlatformName: aws.ToString(inst.PlatformDetails),
	}
	if inst.State != nil {
		n.EC2State = string(inst.State.Name)
	}
	for _, t := range inst.Tags {
		if aws.ToString(t.Key) == "Name" {
			n.Name = aws.ToString(t.Value)
		}
	}
	return n
}

// ec2Details returns each instance's name and state, asking for up to 1000
// IDs per call. Managed nodes whose instance EC2 no longer knows (just
// terminated, or registered from elsewhere) make the call fail with
// InvalidInstanceID.NotFound; they are dropped and the batch retried once.
func ec2Details(ctx context.Context, api EC2API, ids []string) (map[string]Node, error) {
	out := make(map[string]Node, len(ids))
	for start := 0; start < len(ids); start += describeIDsBatch {
		batch := ids[start:min(start+describeIDsBatch, len(ids))]
		err := describeIDs(ctx, api, batch, out)
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidInstanceID.NotFound" {
			missing := map[string]bool{}
			for _, id := range IDsIn(ae.ErrorMessage()) {
				missing[id] = true
			}
			var rest []string
			for _, id := range batch {
				if !missing[id] {
					rest = append(rest, id)
				}
			}
			if len(missing) == 0 || len(rest) == len(batch) {
				return nil, fmt.Errorf("looking up instance names: %w", err)
			}
			err = nil
			if len(rest) > 0 {
				err = describeIDs(ctx, api, rest, out)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("looking up instance names: %w", err)
		}
	}
	return out, nil
}

func describeIDs(ctx context.Context, api EC2API, ids []string, out map[string]Node) error {
	insts, err := describeInstances(ctx, api, &ec2.DescribeInstancesInput{InstanceIds: ids})
	for _, inst := range insts {
		n := nodeFromInstance(inst)
		out[n.ID] = n
	}
	return err
}

// describeInstances returns every instance of every page.
func describeInstances(ctx context.Context, api EC2API, in *ec2.DescribeInstancesInput) ([]ec2types.Instance, error) {
	var insts []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return insts, err
		}
		for _, r := range page.Reservations {
			insts = append(insts, r.Instances...)
		}
	}
	return insts, nil
}
