package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmd/root"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

const ec2Trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// world builds scenario resources through the AWS APIs of a sandbox. Its
// methods fail t, the test or subtest that uses it (see with).
type world struct {
	t   *testing.T
	ctx context.Context
	sb  *sandbox.Sandbox
	cfg aws.Config
	ec2 *ec2.Client
	iam *iam.Client
	ssm *ssm.Client
	// seq numbers resources whose names must be unique.
	seq *atomic.Int64
	// agents are the stop functions of agents started by agentAt.
	agents *sync.Map
}

func newWorld(t *testing.T, specs []sandbox.InstanceSpec) *world {
	sb := sandboxtest.Start(t, sandbox.Options{Instances: specs})
	cfg := sb.AWSConfig()
	return &world{t: t, ctx: context.Background(), sb: sb, cfg: cfg, seq: &atomic.Int64{}, agents: &sync.Map{},
		ec2: ec2.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
}

// with is w reporting to t.
func (w *world) with(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

func (w *world) must(err error, what string) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) byName(name string) *sandbox.Instance {
	for _, i := range w.sb.Instances() {
		if i.Name == name {
			return i
		}
	}
	w.t.Fatalf("no sandbox instance %s", name)
	return nil
}

// role creates a role trusted by EC2 with the given managed and inline
// policies, and an instance profile of the same name.
func (w *world) role(name string, managed []string, inline map[string]string) string {
	w.t.Helper()
	_, err := w.iam.CreateRole(w.ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2Trust)})
	w.must(err, "CreateRole")
	for _, arn := range managed {
		_, err := w.iam.AttachRolePolicy(w.ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)})
		w.must(err, "AttachRolePolicy")
	}
	for pn, doc := range inline {
		_, err := w.iam.PutRolePolicy(w.ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)})
		w.must(err, "PutRolePolicy")
	}
	prof, err := w.iam.CreateInstanceProfile(w.ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)})
	w.must(err, "CreateInstanceProfile")
	_, err = w.iam.AddRoleToInstanceProfile(w.ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)})
	w.must(err, "AddRoleToInstanceProfile")
	return aws.ToString(prof.InstanceProfile.Arn)
}

// sandboxProfile is the sandbox's own healthy instance profile.
func (w *world) sandboxProfile() string {
	w.t.Helper()
	out, err := w.iam.GetInstanceProfile(w.ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(fleet.ProfileName)})
	w.must(err, "GetInstanceProfile")
	return aws.ToString(out.InstanceProfile.Arn)
}

// launch starts an instance in subnet (with a public IP when public).
func (w *world) launch(name, subnet string, public bool, profileARN string, sgs []string, tags ...string) string {
	w.t.Helper()
	tagList := []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}
	for i := 0; i+1 < len(tags); i += 2 {
		tagList = append(tagList, ec2types.Tag{Key: aws.String(tags[i]), Value: aws.String(tags[i+1])})
	}
	in := &ec2.RunInstancesInput{ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		MetadataOptions:   &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tagList}}}
	if public {
		in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet),
			AssociatePublicIpAddress: aws.Bool(true), Groups: sgs}}
	} else {
		in.SubnetId, in.SecurityGroupIds = aws.String(subnet), sgs
	}
	if profileARN != "" {
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profileARN)}
	}
	out, err := w.ec2.RunInstances(w.ctx, in)
	w.must(err, "RunInstances")
	return aws.ToString(out.Instances[0].InstanceId)
}

// register makes id a managed node whose agent is not connected, the way a
// real agent registers (UpdateInstanceInformation, which the SDK does not
// model), reporting agentVersion (DefaultAgentVersion when empty).
func (w *world) register(id string, agentVersion ...string) {
	w.t.Helper()
	v := agent.DefaultAgentVersion
	if len(agentVersion) > 0 {
		v = agentVersion[0]
	}
	body, _ := json.Marshal(map[string]string{"InstanceId": id, "AgentName": "amazon-ssm-agent", "AgentVersion": v,
		"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023"})
	req, _ := http.NewRequest(http.MethodPost, w.sb.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	sandboxtest.Sign(w.t, w.sb, req, body, "ssm")
	resp, err := http.DefaultClient.Do(req)
	w.must(err, "UpdateInstanceInformation")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		w.t.Fatalf("UpdateInstanceInformation: %s", resp.Status)
	}
}

// online runs an emulated agent for id until the test ends, or until the
// returned function stops it.
func (w *world) online(id string, agentVersion ...string) (stop func()) {
	w.t.Helper()
	cfg := agent.Config{InstanceID: id, Region: w.sb.Region(), Endpoint: w.sb.URL(), Credentials: w.sb.Credentials(), ReconnectDelay: 50 * time.Millisecond}
	if len(agentVersion) > 0 {
		cfg.AgentVersion = agentVersion[0]
	}
	a := agent.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); _ = a.Close(); <-done }) }
	w.t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for !a.Connected() {
		if time.Now().After(deadline) {
			w.t.Fatalf("agent for %s did not connect", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

// network is a VPC built for one scenario.
type network struct {
	vpc, cidr string
	// subnet is in AZ a; its route table is table.
	subnet, table string
	igw           string
	defaultSG     string
}

// vpc creates a VPC with DNS support and hostnames on, one subnet in AZ a
// with a route table of its own, and (public) an internet gateway with a
// default route to it.
func (w *world) vpc(cidr string, public bool) network {
	w.t.Helper()
	vpc, err := w.ec2.CreateVpc(w.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	w.must(err, "CreateVpc")
	n := network{vpc: aws.ToString(vpc.Vpc.VpcId), cidr: cidr}
	for _, in := range []*ec2.ModifyVpcAttributeInput{
		{VpcId: vpc.Vpc.VpcId, EnableDnsSupport: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
		{VpcId: vpc.Vpc.VpcId, EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}},
	} {
		_, err := w.ec2.ModifyVpcAttribute(w.ctx, in)
		w.must(err, "ModifyVpcAttribute")
	}
	n.subnet, n.table = w.subnet(n, 1, "a")
	if public {
		igw, err := w.ec2.CreateInternetGateway(w.ctx, &ec2.CreateInternetGatewayInput{})
		w.must(err, "CreateInternetGateway")
		n.igw = aws.ToString(igw.InternetGateway.InternetGatewayId)
		_, err = w.ec2.AttachInternetGateway(w.ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(n.igw), VpcId: aws.String(n.vpc)})
		w.must(err, "AttachInternetGateway")
		w.route(n.table, "0.0.0.0/0", n.igw)
	}
	def, err := w.ec2.DescribeSecurityGroups(w.ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{n.vpc}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	w.must(err, "DescribeSecurityGroups")
	n.defaultSG = aws.ToString(def.SecurityGroups[0].GroupId)
	return n
}

// subnet adds subnet number i (x.y.i.0/24) in AZ az with a route table of
// its own.
func (w *world) subnet(n network, i int, az string) (subnet, table string) {
	w.t.Helper()
	cidr := strings.Replace(n.cidr, ".0.0/16", fmt.Sprintf(".%d.0/24", i), 1)
	sub, err := w.ec2.CreateSubnet(w.ctx, &ec2.CreateSubnetInput{VpcId: aws.String(n.vpc), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(w.sb.Region() + az)})
	w.must(err, "CreateSubnet")
	rt, err := w.ec2.CreateRouteTable(w.ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(n.vpc)})
	w.must(err, "CreateRouteTable")
	_, err = w.ec2.AssociateRouteTable(w.ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: sub.Subnet.SubnetId})
	w.must(err, "AssociateRouteTable")
	return aws.ToString(sub.Subnet.SubnetId), aws.ToString(rt.RouteTable.RouteTableId)
}

// route adds a route to target (igw-, nat-, pcx- or tgw-).
func (w *world) route(table, dest, target string) {
	w.t.Helper()
	in := &ec2.CreateRouteInput{RouteTableId: aws.String(table), DestinationCidrBlock: aws.String(dest)}
	switch {
	case strings.HasPrefix(target, "igw-"):
		in.GatewayId = aws.String(target)
	case strings.HasPrefix(target, "nat-"):
		in.NatGatewayId = aws.String(target)
	case strings.HasPrefix(target, "pcx-"):
		in.VpcPeeringConnectionId = aws.String(target)
	case strings.HasPrefix(target, "tgw-"):
		in.TransitGatewayId = aws.String(target)
	}
	_, err := w.ec2.CreateRoute(w.ctx, in)
	w.must(err, "CreateRoute "+dest+" → "+target)
}

// nat creates an available NAT gateway in subnet.
func (w *world) nat(subnet string) string {
	w.t.Helper()
	eip, err := w.ec2.AllocateAddress(w.ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
	w.must(err, "AllocateAddress")
	out, err := w.ec2.CreateNatGateway(w.ctx, &ec2.CreateNatGatewayInput{SubnetId: aws.String(subnet), AllocationId: eip.AllocationId})
	w.must(err, "CreateNatGateway")
	return aws.ToString(out.NatGateway.NatGatewayId)
}

// sg creates a security group that allows TCP port in from cidr.
func (w *world) sg(n network, port int32, cidr string) string {
	w.t.Helper()
	sg, err := w.ec2.CreateSecurityGroup(w.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(fmt.Sprintf("endpoints-%d", w.seq.Add(1))),
		Description: aws.String("endpoints"), VpcId: aws.String(n.vpc)})
	w.must(err, "CreateSecurityGroup")
	_, err = w.ec2.AuthorizeSecurityGroupIngress(w.ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}}})
	w.must(err, "AuthorizeSecurityGroupIngress")
	return aws.ToString(sg.GroupId)
}

// endpoints creates interface endpoints for svcs in subnet with group sg,
// returning their IDs and DNS names by service.
func (w *world) endpoints(n network, subnet, sg string, privateDNS bool, svcs ...string) (ids, dns map[string]string) {
	w.t.Helper()
	ids, dns = map[string]string{}, map[string]string{}
	for _, svc := range svcs {
		out, err := w.ec2.CreateVpcEndpoint(w.ctx, &ec2.CreateVpcEndpointInput{VpcId: aws.String(n.vpc), VpcEndpointType: ec2types.VpcEndpointTypeInterface,
			ServiceName: aws.String("com.amazonaws." + w.sb.Region() + "." + svc), SubnetIds: []string{subnet},
			SecurityGroupIds: []string{sg}, PrivateDnsEnabled: aws.Bool(privateDNS)})
		w.must(err, "CreateVpcEndpoint "+svc)
		ids[svc] = aws.ToString(out.VpcEndpoint.VpcEndpointId)
		if len(out.VpcEndpoint.DnsEntries) > 0 {
			dns[svc] = aws.ToString(out.VpcEndpoint.DnsEntries[0].DnsName)
		}
	}
	return ids, dns
}

// isolatedVPC creates a VPC with DNS on, one subnet without any default
// route, and interface endpoints for ssm, ssmmessages and ec2messages whose
// security group allows ingressPort from the VPC.
func (w *world) isolatedVPC(cidr string, privateDNS bool, ingressPort int32) (network, map[string]string) {
	w.t.Helper()
	n := w.vpc(cidr, false)
	ids, _ := w.endpoints(n, n.subnet, w.sg(n, ingressPort, cidr), privateDNS, "ssm", "ssmmessages", "ec2messages")
	return n, ids
}

// prefsDocument creates a Session document with the given inputs.
func (w *world) prefsDocument(name string, inputs map[string]any) {
	w.t.Helper()
	content, _ := json.Marshal(map[string]any{"schemaVersion": "1.0", "description": "doctor test", "sessionType": "Standard_Stream", "inputs": inputs})
	_, err := w.ssm.CreateDocument(w.ctx, &ssm.CreateDocumentInput{Name: aws.String(name), Content: aws.String(string(content)),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson})
	w.must(err, "CreateDocument "+name)
}

// doctorWith checks one target with cfg's credentials.
func (w *world) doctorWith(cfg aws.Config, id, document string) (doctor.InstanceReport, *awsapi.CallCounter) {
	w.t.Helper()
	var cc awsapi.CallCounter
	g := &doctor.Gatherer{Clients: doctor.NewClients(cc.Instrument(cfg)), Region: w.sb.Region(), Document: document}
	ctx, cancel := context.WithTimeout(w.ctx, 60*time.Second)
	defer cancel()
	f, err := g.Gather(ctx, doctor.Selection{Targets: []string{id}})
	w.must(err, "Gather")
	rep := doctor.Run(f, time.Now())
	if len(rep.Instances) != 1 {
		w.t.Fatalf("got %d reports", len(rep.Instances))
	}
	return rep.Instances[0], &cc
}

// runPrinted runs a fix exactly as printed: the line is split as a shell
// would and run with the real AWS CLI against the sandbox (ssmkit lines
// run the ssmkit command tree in-process), with the sandbox's environment
// and no config files, as a user who pasted it would.
func (w *world) runPrinted(line string) {
	w.t.Helper()
	argv, err := doctor.SplitCommand(line)
	w.must(err, "splitting the printed fix")
	ctx, cancel := context.WithTimeout(w.ctx, 90*time.Second)
	defer cancel()
	switch argv[0] {
	case "aws":
		bin, err := exec.LookPath("aws")
		if err != nil {
			testutil.MissingTool(w.t, "the AWS CLI (aws) is not installed; %s", testutil.InstallAWSCLI)
		}
		c := exec.CommandContext(ctx, bin, argv[1:]...)
		c.Env = append(append(os.Environ(), w.sb.Env()...), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
		if out, err := c.CombinedOutput(); err != nil {
			w.t.Fatalf("the printed fix failed: %s\n%v\n%s", line, err, out)
		}
	case "ssmkit":
		ios, _, stdout, stderr := iostreams.Test()
		f := root.NewFactory(ios, func(string) string { return "" })
		f.AWSConfig = func(context.Context) (aws.Config, error) { return w.cfg, nil }
		if code := root.Execute(ctx, f, root.NewCmdRoot(f), argv[1:]); code != 0 {
			w.t.Fatalf("the printed fix failed: %s\nexit %d\n%s%s", line, code, stdout, stderr)
		}
	default:
		w.t.Fatalf("a fix that is neither aws nor ssmkit: %s", line)
	}
}

func withStatus(r doctor.InstanceReport, statuses ...doctor.Status) []string {
	var out []string
	for _, c := range r.Checks {
		for _, s := range statuses {
			if c.Status == s {
				out = append(out, c.ID)
			}
		}
	}
	sort.Strings(out)
	return out
}

func checkOf(r doctor.InstanceReport, id string) doctor.Check {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return doctor.Check{}
}

func logReport(t *testing.T, r doctor.InstanceReport) {
	t.Helper()
	for _, c := range r.Checks {
		if c.Status != doctor.Skip && c.Status != doctor.Pass || testing.Verbose() {
			t.Logf("  %-38s %-4s %s %v %q", c.ID, c.Status, c.Summary, c.Evidence, c.Commands)
		}
	}
}
