package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ssmkit/ssmkit/pkg/iampolicy"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
)

// DefaultAutoAttachInterval is how often the sandbox looks for instances
// launched through its API that an agent could register from.
const DefaultAutoAttachInterval = time.Second

// maxChecksPerPoll bounds the instances whose prerequisites one poll
// evaluates (each costs a few API calls); the rest wait for the next polls,
// taken round-robin.
const maxChecksPerPoll = 16

// AgentVersionTag on an EC2 instance launched through the sandbox's API
// chooses the version its auto-attached agent reports (a 4-part version
// such as 3.0.161.0; Options.AgentVersion otherwise).
const AgentVersionTag = "ssmkit:agent-version"

// sandboxTagKey marks instances a sandbox launched itself (fleet.Launch
// sets it at launch time); they already have their agent, or must not get
// one.
const sandboxTagKey = "ssmkit:sandbox"

// CoreActions are the actions an instance's role must allow before its
// agent can register and serve sessions (AmazonSSMManagedInstanceCore
// grants them).
var CoreActions = []string{
	"ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel",
	"ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel",
	"ssmmessages:OpenDataChannel",
	"ec2messages:GetMessages",
}

// endpointServices are the interface endpoints an instance without a NAT
// or internet route needs in its VPC.
var endpointServices = []string{"ssm", "ssmmessages", "ec2messages"}

// attachEC2 is the part of EC2 the watcher reads.
type attachEC2 interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
}

// attachIAM is the part of IAM the watcher reads.
type attachIAM interface {
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
}

// attacher watches moto for instances launched through the sandbox's API
// and runs an emulated agent on each one whose prerequisites hold — as
// AWS would let a real agent on it register — and only while they hold.
type attacher struct {
	s        *Sandbox
	ec2      attachEC2
	iam      attachIAM
	region   string
	interval time.Duration
	logf     func(format string, args ...any)
	done     chan struct{}
	// autoAttach: attach agents (Options.AutoAttach); without it the
	// watcher only deregisters terminated instances.
	autoAttach bool
	// deregistered instance ids (terminated for good); poll goroutine only.
	deregistered map[string]bool

	cursor int               // round-robin position among candidates
	reason map[string]string // last logged reason an instance has no agent

	mu       sync.Mutex
	attached map[string]*Instance // instances whose agent runs
	closed   bool
	polls    int           // completed polls
	polled   chan struct{} // closed and replaced after each poll
}

// startAttacher starts the watcher; Close stops it. It always deregisters
// terminated instances; with Options.AutoAttach it also attaches agents.
func (s *Sandbox) startAttacher() {
	interval := s.opts.AutoAttachInterval
	if interval <= 0 {
		interval = DefaultAutoAttachInterval
	}
	a := &attacher{
		s: s, ec2: ec2.NewFromConfig(s.awsCfg), iam: iam.NewFromConfig(s.awsCfg),
		region: s.opts.Region, interval: interval, logf: s.opts.Logf,
		done: make(chan struct{}), reason: map[string]string{}, attached: map[string]*Instance{},
		autoAttach: s.opts.AutoAttach, deregistered: map[string]bool{}, polled: make(chan struct{}),
	}
	s.attacher = a
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(a.done)
		a.run(s.ctx)
	}()
}

// WaitAutoAttachPolls waits until the watcher has completed n more looks at
// the instances (see Options.AutoAttach): whatever changed in moto before
// the call has then been seen and acted on.
func (s *Sandbox) WaitAutoAttachPolls(ctx context.Context, n int) error {
	a := s.attacher
	a.mu.Lock()
	target := a.polls + n
	a.mu.Unlock()
	for {
		a.mu.Lock()
		done, ch := a.polls >= target, a.polled
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the sandbox's instance watcher: %w", ctx.Err())
		case <-a.done:
			return errors.New("the sandbox's instance watcher stopped")
		}
	}
}

// Attached returns the instances the sandbox attached an agent to because
// they were launched through its API with their prerequisites met (see
// Options.AutoAttach), sorted by id.
func (s *Sandbox) Attached() []*Instance {
	if s.attacher == nil {
		return nil
	}
	a := s.attacher
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Instance, 0, len(a.attached))
	for _, i := range a.attached {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *attacher) run(ctx context.Context) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		if err := a.poll(ctx); err != nil && ctx.Err() == nil {
			a.logf("auto-attach: %v", err)
		}
		a.mu.Lock()
		a.polls++
		close(a.polled)
		a.polled = make(chan struct{})
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// close waits for the watcher to stop, then stops the agents it started.
func (a *attacher) close() {
	<-a.done
	a.mu.Lock()
	a.closed = true
	agents := make([]*Instance, 0, len(a.attached))
	for _, i := range a.attached {
		agents = append(agents, i)
	}
	a.mu.Unlock()
	for _, i := range agents {
		_ = i.agent.Close()
	}
}

// candidate is a running instance found by one poll.
type candidate struct {
	inst ec2types.Instance
	id   string
}

// poll looks at every instance once: agents of instances that stopped
// running are stopped, and up to maxChecksPerPoll running instances have
// their prerequisites evaluated (attaching or detaching their agent).
func (a *attacher) poll(ctx context.Context) error {
	own := map[string]bool{}
	for _, i := range a.s.Instances() {
		own[i.ID] = true
	}
	var running []candidate
	var terminated []string
	present := map[string]bool{}
	p := ec2.NewDescribeInstancesPaginator(a.ec2, &ec2.DescribeInstancesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing instances: %w", err)
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				id := aws.ToString(in.InstanceId)
				if id == "" {
					continue
				}
				if in.State != nil && (in.State.Name == ec2types.InstanceStateNameTerminated || in.State.Name == ec2types.InstanceStateNameShuttingDown) {
					terminated = append(terminated, id)
					continue
				}
				if !a.autoAttach || own[id] || hasTag(in.Tags, sandboxTagKey, "true") {
					continue
				}
				if in.State == nil || in.State.Name != ec2types.InstanceStateNameRunning {
					continue
				}
				present[id] = true
				running = append(running, candidate{inst: in, id: id})
			}
		}
	}
	// An agent whose instance stopped or terminated goes away with it.
	a.mu.Lock()
	var gone []*Instance
	for id, i := range a.attached {
		if !present[id] {
			gone = append(gone, i)
			delete(a.attached, id)
		}
	}
	a.mu.Unlock()
	for _, i := range gone {
		a.logf("auto-attach: %s is no longer running; stopping its agent", i.ID)
		_ = i.agent.Close()
	}
	a.deregister(ctx, terminated)
	for id := range a.reason {
		if !present[id] {
			delete(a.reason, id)
		}
	}
	if len(running) == 0 {
		return nil
	}

	sort.Slice(running, func(i, j int) bool { return running[i].id < running[j].id })
	n := min(len(running), maxChecksPerPoll)
	start := a.cursor % len(running)
	a.cursor = start + n
	c := newCheckCache()
	var errs []error
	for k := 0; k < n; k++ {
		cand := running[(start+k)%len(running)]
		role, reason, err := a.check(ctx, c, cand.inst)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking %s: %w", cand.id, err))
			continue
		}
		if reason != "" {
			a.detach(cand.id, reason)
			continue
		}
		if err := a.attach(ctx, cand.inst, role); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deregister drops terminated instances from the registry and the
// gateway, and stops the agents the sandbox ran on them: AWS removes a
// terminated instance from DescribeInstanceInformation.
func (a *attacher) deregister(ctx context.Context, ids []string) {
	for _, id := range ids {
		if a.deregistered[id] {
			continue
		}
		a.deregistered[id] = true
		removed, err := a.s.registry.RemoveInstance(ctx, "", id)
		if err != nil {
			a.logf("deregistering %s: %v", id, err)
			continue
		}
		_, known := a.s.gateway.Instance(id)
		a.s.gateway.RemoveInstance(id)
		for _, i := range a.s.Instances() {
			if i.ID == id && i.agent != nil {
				_ = i.agent.Close()
			}
		}
		if removed || known {
			a.logf("%s was terminated; deregistered", id)
		}
	}
}

// attach registers inst and starts its agent, unless it has one.
func (a *attacher) attach(ctx context.Context, in ec2types.Instance, role string) error {
	id := aws.ToString(in.InstanceId)
	a.mu.Lock()
	_, has := a.attached[id]
	a.mu.Unlock()
	if has {
		return nil
	}
	tags := map[string]string{}
	for _, t := range in.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	inst := &Instance{AgentVersion: a.s.defaultAgentVersion()}
	if v, ok := tags[AgentVersionTag]; ok {
		if version.Valid(v) {
			inst.AgentVersion = v
		} else if a.reason[id] != "bad version "+v {
			a.reason[id] = "bad version " + v
			a.logf("auto-attach: %s: tag %s=%q is not a 4-part version such as 3.0.161.0; using %s", id, AgentVersionTag, v, inst.AgentVersion)
		}
	}
	inst.ID = id
	inst.Name = tags["Name"]
	inst.PrivateIP = aws.ToString(in.PrivateIpAddress)
	inst.PublicIP = aws.ToString(in.PublicIpAddress)
	inst.SubnetID = aws.ToString(in.SubnetId)
	inst.VpcID = aws.ToString(in.VpcId)
	if in.Placement != nil {
		inst.AvailabilityZone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if err := a.s.registry.UpdateInstance(ctx, instanceInfo(inst, role, tags)); err != nil {
		return fmt.Errorf("registering %s: %w", id, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || ctx.Err() != nil {
		return nil
	}
	a.s.startAgent(inst)
	a.attached[id] = inst
	delete(a.reason, id)
	a.logf("auto-attach: %s (%s) can register; agent started", id, inst.Name)
	return nil
}

// detach notes why id has no agent and stops the agent it had, if any:
// an agent whose role or route went away loses the service, as on AWS.
func (a *attacher) detach(id, reason string) {
	if a.reason[id] != reason {
		a.reason[id] = reason
		a.logf("auto-attach: %s cannot register: %s", id, reason)
	}
	a.mu.Lock()
	inst := a.attached[id]
	delete(a.attached, id)
	a.mu.Unlock()
	if inst != nil {
		_ = inst.agent.Close()
	}
}

// checkCache keeps what one poll learnt about profiles, subnets and VPCs,
// so that many instances sharing them cost one look-up each.
type checkCache struct {
	profiles  map[string]profileResult
	routes    map[string]string // subnet → "" when routed, else the reason
	endpoints map[string]map[string]bool
}

type profileResult struct {
	role, reason string
}

func newCheckCache() *checkCache {
	return &checkCache{profiles: map[string]profileResult{}, routes: map[string]string{}, endpoints: map[string]map[string]bool{}}
}

// check evaluates an instance's prerequisites. It returns the role name
// and "" when an agent on it could register, else the reason it could not.
func (a *attacher) check(ctx context.Context, c *checkCache, in ec2types.Instance) (role, reason string, err error) {
	if in.IamInstanceProfile == nil || aws.ToString(in.IamInstanceProfile.Arn) == "" {
		return "", "no instance profile", nil
	}
	arn := aws.ToString(in.IamInstanceProfile.Arn)
	pr, ok := c.profiles[arn]
	if !ok {
		pr.role, pr.reason, err = a.checkProfile(ctx, arn)
		if err != nil {
			return "", "", err
		}
		c.profiles[arn] = pr
	}
	if pr.reason != "" {
		return "", pr.reason, nil
	}
	reason, err = a.checkRoute(ctx, c, in)
	if err != nil {
		return "", "", err
	}
	return pr.role, reason, nil
}

// checkProfile finds the profile's role and whether its policies allow the
// core actions.
func (a *attacher) checkProfile(ctx context.Context, arn string) (role, reason string, err error) {
	name := path.Base(arn) // arn:aws:iam::123:instance-profile/[path/]name
	prof, err := a.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil {
		var nf interface{ ErrorCode() string }
		if errors.As(err, &nf) && nf.ErrorCode() == "NoSuchEntity" {
			return "", "instance profile " + name + " does not exist", nil
		}
		return "", "", fmt.Errorf("reading instance profile %s: %w", name, err)
	}
	if prof.InstanceProfile == nil || len(prof.InstanceProfile.Roles) == 0 {
		return "", "instance profile " + name + " has no role", nil
	}
	role = aws.ToString(prof.InstanceProfile.Roles[0].RoleName)
	docs, err := a.rolePolicies(ctx, role)
	if err != nil {
		return "", "", err
	}
	var missing []string
	for _, action := range CoreActions {
		if !allowed(docs, action) {
			missing = append(missing, action)
		}
	}
	if len(missing) > 0 {
		return role, fmt.Sprintf("role %s does not allow %s", role, strings.Join(missing, ", ")), nil
	}
	return role, "", nil
}

// rolePolicies reads the documents of the role's attached managed
// policies (their default versions) and inline policies.
func (a *attacher) rolePolicies(ctx context.Context, role string) ([]iampolicy.Document, error) {
	var docs []iampolicy.Document
	ap := iam.NewListAttachedRolePoliciesPaginator(a.iam, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	for ap.HasMorePages() {
		out, err := ap.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the policies attached to %s: %w", role, err)
		}
		for _, p := range out.AttachedPolicies {
			pol, err := a.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.PolicyArn})
			if err != nil {
				return nil, fmt.Errorf("reading policy %s: %w", aws.ToString(p.PolicyArn), err)
			}
			ver, err := a.iam.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: p.PolicyArn, VersionId: pol.Policy.DefaultVersionId})
			if err != nil {
				return nil, fmt.Errorf("reading policy %s: %w", aws.ToString(p.PolicyArn), err)
			}
			if ver.PolicyVersion == nil {
				continue
			}
			d, err := iampolicy.Parse(aws.ToString(p.PolicyName), aws.ToString(ver.PolicyVersion.Document))
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", aws.ToString(p.PolicyArn), err)
			}
			docs = append(docs, d)
		}
	}
	ip := iam.NewListRolePoliciesPaginator(a.iam, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	for ip.HasMorePages() {
		out, err := ip.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the inline policies of %s: %w", role, err)
		}
		for _, name := range out.PolicyNames {
			rp, err := a.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
			if err != nil {
				return nil, fmt.Errorf("reading inline policy %s of %s: %w", name, role, err)
			}
			d, err := iampolicy.Parse(name, aws.ToString(rp.PolicyDocument))
			if err != nil {
				return nil, fmt.Errorf("inline policy %s of %s: %w", name, role, err)
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// checkRoute reports why the instance could not reach the service, or ""
// when it could: a default route to an internet gateway (with a public
// IP) or a NAT gateway, or the three interface endpoints in its VPC.
func (a *attacher) checkRoute(ctx context.Context, c *checkCache, in ec2types.Instance) (string, error) {
	subnet, vpc := aws.ToString(in.SubnetId), aws.ToString(in.VpcId)
	public := aws.ToString(in.PublicIpAddress) != ""
	key := fmt.Sprintf("%s/%t", subnet, public)
	reason, ok := c.routes[key]
	if !ok {
		var err error
		reason, err = a.defaultRoute(ctx, subnet, vpc, public)
		if err != nil {
			return "", err
		}
		c.routes[key] = reason
	}
	if reason == "" {
		return "", nil
	}
	have, ok := c.endpoints[vpc]
	if !ok {
		var err error
		if have, err = a.vpcEndpoints(ctx, vpc); err != nil {
			return "", err
		}
		c.endpoints[vpc] = have
	}
	var missing []string
	for _, svc := range endpointServices {
		if !have[svc] {
			missing = append(missing, svc)
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%s, and vpc %s has no interface endpoint for %s", reason, vpc, strings.Join(missing, ", ")), nil
}

// defaultRoute inspects the subnet's route table (its explicit
// association, else the VPC's main table).
func (a *attacher) defaultRoute(ctx context.Context, subnet, vpc string, public bool) (string, error) {
	if subnet == "" || vpc == "" {
		return "no subnet", nil
	}
	out, err := a.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
		{Name: aws.String("association.subnet-id"), Values: []string{subnet}}}})
	if err != nil {
		return "", fmt.Errorf("describing the route table of %s: %w", subnet, err)
	}
	if len(out.RouteTables) == 0 {
		out, err = a.ec2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
		if err != nil {
			return "", fmt.Errorf("describing the main route table of %s: %w", vpc, err)
		}
	}
	if len(out.RouteTables) == 0 {
		return "subnet " + subnet + " has no route table", nil
	}
	rt := out.RouteTables[0]
	igwNoIP := false
	for _, r := range rt.Routes {
		if aws.ToString(r.DestinationCidrBlock) != "0.0.0.0/0" || r.State == ec2types.RouteStateBlackhole {
			continue
		}
		if aws.ToString(r.NatGatewayId) != "" {
			return "", nil
		}
		if strings.HasPrefix(aws.ToString(r.GatewayId), "igw-") {
			if public {
				return "", nil
			}
			igwNoIP = true
		}
	}
	if igwNoIP {
		return fmt.Sprintf("route table %s sends 0.0.0.0/0 to an internet gateway but the instance has no public IP", aws.ToString(rt.RouteTableId)), nil
	}
	return fmt.Sprintf("route table %s has no 0.0.0.0/0 route to a NAT or internet gateway", aws.ToString(rt.RouteTableId)), nil
}

// vpcEndpoints returns the short names (ssm, …) of the interface endpoints
// in vpc that an agent could use: available, with private DNS.
func (a *attacher) vpcEndpoints(ctx context.Context, vpc string) (map[string]bool, error) {
	have := map[string]bool{}
	prefix := "com.amazonaws." + a.region + "."
	p := ec2.NewDescribeVpcEndpointsPaginator(a.ec2, &ec2.DescribeVpcEndpointsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing the endpoints of %s: %w", vpc, err)
		}
		for _, e := range out.VpcEndpoints {
			if aws.ToString(e.VpcId) != vpc || !strings.EqualFold(string(e.VpcEndpointType), "Interface") ||
				!aws.ToBool(e.PrivateDnsEnabled) {
				continue
			}
			if st := strings.ToLower(string(e.State)); st != "" && st != "available" {
				continue
			}
			if svc, ok := strings.CutPrefix(aws.ToString(e.ServiceName), prefix); ok {
				have[svc] = true
			}
		}
	}
	return have, nil
}

func hasTag(tags []ec2types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

// allowed reports whether the role's policies allow action, evaluated by
// pkg/iampolicy on actions alone (the agent's core actions apply to "*").
// A conditional answer counts as allowed: the sandbox has no request
// context to decide conditions with, and AWS would let an agent try.
func allowed(docs []iampolicy.Document, action string) bool {
	d := iampolicy.Evaluate(docs, iampolicy.Request{Action: action}).Decision
	return d == iampolicy.Allowed || d == iampolicy.Conditional
}

// InstanceProfileARN is the instance profile of the sandbox's own
// instances; its role has AmazonSSMManagedInstanceCore.
func (s *Sandbox) InstanceProfileARN() string { return s.profile }
