package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// launch runs one instance through the sandbox endpoint, as a user's
// Terraform or AWS CLI would.
func launch(t *testing.T, c *ec2.Client, name, subnet, profile string, public bool, tags ...ec2types.Tag) string {
	t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: append([]ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}, tags...)}},
	}
	if public {
		in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0),
			SubnetId: aws.String(subnet), AssociatePublicIpAddress: aws.Bool(true)}}
	} else {
		in.SubnetId = aws.String(subnet)
	}
	if profile != "" {
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profile)}
	}
	out, err := c.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatalf("launching %s: %v", name, err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// managed returns the ping status of every managed instance.
func managed(t *testing.T, c *ssm.Client) map[string]ssmtypes.PingStatus {
	t.Helper()
	out, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatalf("describing instance information: %v", err)
	}
	m := map[string]ssmtypes.PingStatus{}
	for _, i := range out.InstanceInformationList {
		m[aws.ToString(i.InstanceId)] = i.PingStatus
	}
	return m
}

func waitOnline(t *testing.T, c *ssm.Client, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if managed(t, c)[id] == ssmtypes.PingStatusOnline {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not Online after %v: %v", id, within, managed(t, c))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testNetwork creates a VPC of the test's own (shared moto servers see
// every test's resources): a public subnet routed to an internet gateway
// and a private one with only the local route.
func testNetwork(t *testing.T, c *ec2.Client) fleet.Network {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("creating the test network: %v", err)
		}
	}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	must(err)
	n := fleet.Network{VpcID: aws.ToString(vpc.Vpc.VpcId)}
	pub, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.77.1.0/24")})
	must(err)
	priv, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.77.2.0/24")})
	must(err)
	n.PublicSubnetID, n.PrivateSubnetID = aws.ToString(pub.Subnet.SubnetId), aws.ToString(priv.Subnet.SubnetId)
	igw, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	must(err)
	_, err = c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpc.Vpc.VpcId})
	must(err)
	rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: vpc.Vpc.VpcId})
	must(err)
	_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId})
	must(err)
	_, err = c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: pub.Subnet.SubnetId})
	must(err)
	// The private subnet uses the VPC's main table: only the local route.
	return n
}

func attachedIDs(sb *sandbox.Sandbox) map[string]bool {
	m := map[string]bool{}
	for _, i := range sb.Attached() {
		m[i.ID] = true
	}
	return m
}

func TestAutoAttach(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{
		Instances:          []sandbox.InstanceSpec{{Name: "own"}},
		AutoAttach:         true,
		AutoAttachInterval: 200 * time.Millisecond,
		AgentVersion:       "3.2.582.0",
	})
	cfg := sb.AWSConfig()
	ec2c, ssmc := ec2.NewFromConfig(cfg), ssm.NewFromConfig(cfg)
	net := testNetwork(t, ec2c)
	own := sb.Instances()[0].ID

	start := time.Now()
	healthy := launch(t, ec2c, "tf-web", net.PublicSubnetID, sb.InstanceProfileARN(), true)
	noRole := launch(t, ec2c, "tf-norole", net.PublicSubnetID, "", true)
	private := launch(t, ec2c, "tf-private", net.PrivateSubnetID, sb.InstanceProfileARN(), false)
	noIP := launch(t, ec2c, "tf-noip", net.PublicSubnetID, sb.InstanceProfileARN(), false)
	old := launch(t, ec2c, "tf-old", net.PublicSubnetID, sb.InstanceProfileARN(), true,
		ec2types.Tag{Key: aws.String(sandbox.AgentVersionTag), Value: aws.String("3.0.161.0")})

	waitOnline(t, ssmc, healthy, 10*time.Second)
	t.Logf("%s Online %v after launch", healthy, time.Since(start).Round(time.Millisecond))

	t.Run("agent version per instance", func(t *testing.T) {
		waitOnline(t, ssmc, old, 10*time.Second)
		versions := map[string]string{}
		out, err := ssmc.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range out.InstanceInformationList {
			versions[aws.ToString(i.InstanceId)] = aws.ToString(i.AgentVersion)
		}
		if versions[old] != "3.0.161.0" || versions[healthy] != "3.2.582.0" || versions[own] != "3.2.582.0" {
			t.Errorf("agent versions %v: want %s (tag) 3.0.161.0, the others 3.2.582.0 (Options.AgentVersion)", versions, old)
		}
		for _, i := range sb.Attached() {
			if i.ID == old && i.AgentVersion != "3.0.161.0" {
				t.Errorf("attached %s reports %s", old, i.AgentVersion)
			}
		}
	})

	t.Run("healthy instance is attached once", func(t *testing.T) {
		got := attachedIDs(sb)
		if !got[healthy] {
			t.Fatalf("attached %v, want %s", got, healthy)
		}
		if got[own] {
			t.Errorf("the sandbox's own instance %s was attached again", own)
		}
		for _, i := range sb.Attached() {
			if i.ID == healthy && (i.Name != "tf-web" || !i.Online()) {
				t.Errorf("attached instance %+v: want name tf-web, online", i.Instance)
			}
		}
	})

	// Several polls later the broken ones are still unmanaged.
	waitPolls(t, sb, 3)
	t.Run("broken instances never register", func(t *testing.T) {
		m := managed(t, ssmc)
		for id, why := range map[string]string{noRole: "no instance profile", private: "no route, no endpoints", noIP: "internet gateway without a public IP"} {
			if _, ok := m[id]; ok {
				t.Errorf("%s (%s) is managed: %v", id, why, m[id])
			}
			if attachedIDs(sb)[id] {
				t.Errorf("%s (%s) has an agent", id, why)
			}
		}
	})

	t.Run("endpoints make the private instance managed", func(t *testing.T) {
		for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
			if _, err := ec2c.CreateVpcEndpoint(context.Background(), &ec2.CreateVpcEndpointInput{
				VpcId: aws.String(net.VpcID), ServiceName: aws.String("com.amazonaws." + sb.Region() + "." + svc),
				VpcEndpointType: ec2types.VpcEndpointTypeInterface, SubnetIds: []string{net.PrivateSubnetID},
				PrivateDnsEnabled: aws.Bool(true),
			}); err != nil {
				t.Fatalf("creating the %s endpoint: %v", svc, err)
			}
			if svc != "ec2messages" {
				// Two of three endpoints are not enough.
				waitPolls(t, sb, 2)
				if attachedIDs(sb)[private] {
					t.Fatalf("%s attached with only some endpoints", private)
				}
			}
		}
		waitOnline(t, ssmc, private, 10*time.Second)
		// Endpoints serve the whole VPC: the instance without a public IP
		// in the public subnet now reaches the service too.
		waitOnline(t, ssmc, noIP, 10*time.Second)
		if _, ok := managed(t, ssmc)[noRole]; ok {
			t.Errorf("%s has no instance profile but is managed", noRole)
		}
	})

	t.Run("inline policies are read and evaluated", func(t *testing.T) {
		ctx := context.Background()
		iamc := iam.NewFromConfig(cfg)
		role := "attach-test-inline-" + healthy
		if _, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
			t.Fatal(err)
		}
		put := func(doc string) {
			t.Helper()
			if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("agent"), PolicyDocument: aws.String(doc)}); err != nil {
				t.Fatal(err)
			}
		}
		put(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:*","ssmmessages:*","ec2messages:*"],"Resource":"*"},{"Effect":"Deny","Action":"ssmmessages:OpenDataChannel","Resource":"*"}]}`)
		prof, err := iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(role)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := iamc.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(role), RoleName: aws.String(role)}); err != nil {
			t.Fatal(err)
		}
		id := launch(t, ec2c, "tf-inline", net.PublicSubnetID, aws.ToString(prof.InstanceProfile.Arn), true)
		waitPolls(t, sb, 2)
		if _, ok := managed(t, ssmc)[id]; ok || attachedIDs(sb)[id] {
			t.Fatalf("%s is managed although its role denies ssmmessages:OpenDataChannel", id)
		}
		put(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:*","ssmmessages:*","ec2messages:*"],"Resource":"*"}]}`)
		waitOnline(t, ssmc, id, 10*time.Second)
	})

	t.Run("terminated instance loses its agent", func(t *testing.T) {
		if _, err := ec2c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{healthy}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, listed := managed(t, ssmc)[healthy]
			if !listed && !attachedIDs(sb)[healthy] {
				break // deregistered, as AWS does, not kept as an offline node
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is still managed (%v) or has its agent after termination", healthy, managed(t, ssmc)[healthy])
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// waitPolls waits until the sandbox's watcher has looked at the instances n
// more times: what the test changed before is then seen.
func waitPolls(t *testing.T, sb *sandbox.Sandbox, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sb.WaitAutoAttachPolls(ctx, n); err != nil {
		t.Fatal(err)
	}
}
