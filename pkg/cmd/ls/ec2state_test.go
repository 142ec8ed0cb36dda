package ls

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// fleetAfterDestroy is SSM's view right after `terraform destroy`: the
// agents of the terminated instances are ConnectionLost but still listed,
// as they are on AWS until Systems Manager deregisters them.
type fleetAfterDestroy struct{}

func (fleetAfterDestroy) DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	node := func(id string, ping ssmtypes.PingStatus) ssmtypes.InstanceInformation {
		return ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ping, AgentVersion: aws.String("3.3.1142.0"),
			ResourceType: ssmtypes.ResourceTypeEc2Instance}
	}
	hybrid := node("mi-0123456789abcdef0", ssmtypes.PingStatusConnectionLost)
	hybrid.ResourceType, hybrid.Name = ssmtypes.ResourceTypeManagedInstance, aws.String("on-prem")
	return &ssm.DescribeInstanceInformationOutput{InstanceInformationList: []ssmtypes.InstanceInformation{
		node("i-000000000000000a1", ssmtypes.PingStatusOnline),
		node("i-000000000000000b2", ssmtypes.PingStatusConnectionLost),
		node("i-000000000000000c3", ssmtypes.PingStatusConnectionLost),
		node("i-000000000000000d4", ssmtypes.PingStatusConnectionLost),
		hybrid,
	}}, nil
}

type ec2States map[string]ec2types.InstanceStateName

func (s ec2States) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	var r ec2types.Reservation
	for _, id := range in.InstanceIds {
		r.Instances = append(r.Instances, ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: s[id]},
			Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("n-" + id[len(id)-2:])}}})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{r}}, nil
}

// TestTerminatedInstancesAreNotOfflineNodes: an instance EC2 reports
// terminated or shutting-down can never be reached again, so ls leaves it
// out (--all shows it, flagged with its EC2 state); a stopped one stays,
// flagged ec2:stopped so that "offline" has its reason.
func TestTerminatedInstancesAreNotOfflineNodes(t *testing.T) {
	states := ec2States{
		"i-000000000000000a1": ec2types.InstanceStateNameRunning,
		"i-000000000000000b2": ec2types.InstanceStateNameStopped,
		"i-000000000000000c3": ec2types.InstanceStateNameTerminated,
		"i-000000000000000d4": ec2types.InstanceStateNameShuttingDown,
	}
	clients := func(context.Context) (Clients, error) { return Clients{SSM: fleetAfterDestroy{}, EC2: states}, nil }
	list := func(all bool) map[string]Node {
		t.Helper()
		ios, _, stdout, _ := iostreams.Test()
		if err := lsRun(context.Background(), &LsOptions{IO: ios, Clients: clients, JSON: true, All: all}); err != nil {
			t.Fatal(err)
		}
		var nodes []Node
		if err := json.Unmarshal(stdout.Bytes(), &nodes); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		byID := map[string]Node{}
		for _, n := range nodes {
			byID[n.ID] = n
		}
		return byID
	}

	nodes := list(false)
	if len(nodes) != 3 {
		t.Errorf("ls listed %d nodes, want 3 (running, stopped, hybrid): %+v", len(nodes), nodes)
	}
	for _, gone := range []string{"i-000000000000000c3", "i-000000000000000d4"} {
		if n, ok := nodes[gone]; ok {
			t.Errorf("ls lists %s (EC2 %s) as a node: %+v", gone, states[gone], n)
		}
	}
	if n := nodes["i-000000000000000b2"]; n.EC2State != "stopped" || !slices.Equal(n.Flags, []string{FlagOffline, "ec2:stopped"}) {
		t.Errorf("stopped instance: %+v", n)
	}
	if n := nodes["i-000000000000000a1"]; n.EC2State != "running" || len(n.Flags) != 0 {
		t.Errorf("running instance: %+v", n)
	}
	if n := nodes["mi-0123456789abcdef0"]; n.EC2State != "" || !slices.Equal(n.Flags, []string{FlagOffline}) {
		t.Errorf("hybrid node: %+v", n)
	}

	all := list(true)
	if n := all["i-000000000000000c3"]; n.EC2State != "terminated" || !slices.Contains(n.Flags, "ec2:terminated") {
		t.Errorf("--all: terminated instance %+v", n)
	}
	if len(all) != 5 {
		t.Errorf("--all listed %d nodes, want 5", len(all))
	}

	// The table says how many were left out and how to see them.
	ios, _, stdout, stderr := iostreams.Test()
	if err := lsRun(context.Background(), &LsOptions{IO: ios, Clients: clients}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "n-c3") || !strings.Contains(stdout.String(), "ec2:stopped") ||
		!strings.Contains(stderr.String(), "2 terminated instances not shown (--all shows them)") {
		t.Errorf("table:\n%s\nstderr: %s", stdout, stderr)
	}
}

func TestNewCmdLsAll(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *LsOptions
	cmd := NewCmdLs(&cmdutil.Factory{IOStreams: ios}, func(o *LsOptions) error { got = o; return nil })
	cmdtest.Prepare(cmd, []string{"--all"})
	if _, err := cmd.ExecuteC(); err != nil || !got.All {
		t.Fatalf("--all: %v %+v", err, got)
	}
}
