package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// endpointServices are the interface endpoints the agent needs.
var endpointServices = []string{"ssm", "ssmmessages", "ec2messages"}

func (t *target) networkSkip() (Check, bool) {
	switch {
	case t.hybrid:
		return skip("hybrid managed node: its network is not in this account's VPCs"), true
	case t.vpc == nil:
		return skip("the instance is in no VPC"), true
	case t.vpc.Err != nil:
		return skip("cannot describe %s: %s", t.vpc.ID, shortErr(t.vpc.Err)), true
	}
	return Check{}, false
}

// endpointServiceName is the VPC endpoint service name of svc.
func (t *target) endpointServiceName(svc string) string {
	if strings.HasPrefix(t.f.Region, "cn-") {
		return "cn.com.amazonaws." + t.f.Region + "." + svc
	}
	return "com.amazonaws." + t.f.Region + "." + svc
}

// endpointPlacement is where new interface endpoints go: the subnets and
// security groups of the VPC's interface endpoints for the agent, else the
// instance's subnet and first security group.
func (t *target) endpointPlacement() (subnets, groups []string) {
	for _, e := range t.vpc.Endpoints {
		if e.Type == "Interface" && contains(endpointServices, e.Service) && len(e.SubnetIDs) > 0 {
			return e.SubnetIDs, e.SecurityGroups
		}
	}
	subnets = []string{t.inst.SubnetID}
	if len(t.inst.SecurityGroups) > 0 {
		groups = t.inst.SecurityGroups[:1]
	}
	return subnets, groups
}

// createEndpoints returns the commands that create endpoints for svcs:
// interface endpoints with private DNS (after turning the VPC's DNS
// attributes on, which private DNS needs), an S3 gateway endpoint on the
// instance's route table.
func (t *target) createEndpoints(svcs []string) []string {
	var cmds []string
	v := t.vpc
	if v.DNSSupport != nil && !*v.DNSSupport {
		cmds = append(cmds, cmd("aws", "ec2", "modify-vpc-attribute", "--vpc-id", v.ID, "--enable-dns-support"))
	}
	if v.DNSHostnames != nil && !*v.DNSHostnames {
		cmds = append(cmds, cmd("aws", "ec2", "modify-vpc-attribute", "--vpc-id", v.ID, "--enable-dns-hostnames"))
	}
	subnets, groups := t.endpointPlacement()
	for _, svc := range svcs {
		if svc == "s3" {
			if t.path.table != "" {
				cmds = append(cmds, cmd("aws", "ec2", "create-vpc-endpoint", "--vpc-id", v.ID, "--vpc-endpoint-type", "Gateway",
					"--service-name", t.endpointServiceName(svc), "--route-table-ids", t.path.table))
			}
			continue
		}
		args := []string{"aws", "ec2", "create-vpc-endpoint", "--vpc-id", v.ID, "--vpc-endpoint-type", "Interface",
			"--service-name", t.endpointServiceName(svc), "--subnet-ids"}
		args = append(args, subnets...)
		if len(groups) > 0 {
			args = append(append(args, "--security-group-ids"), groups...)
		}
		cmds = append(cmds, cmd(append(args, "--private-dns-enabled")...))
	}
	return cmds
}

func (t *target) vpcEndpointsModule() string {
	return fmt.Sprintf("Terraform: terraform/modules/vpc-endpoints with vpc_id = %q and subnet_ids = [%q]", t.inst.VpcID, t.inst.SubnetID)
}

func (t *target) networkRoute() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	acc := t.agentAccess()
	var ev, missing, dnsOff []string
	ways := map[string]bool{}
	for _, s := range endpointServices {
		a := acc[s]
		ev = append(ev, s+": "+a.why)
		switch a.via {
		case "":
			if a.dnsOff {
				dnsOff = append(dnsOff, s)
			} else {
				missing = append(missing, s)
			}
		case viaEndpoint:
			ways["interface endpoints"] = true
		case viaHub:
			ways["endpoints in "+a.remote.VpcID] = true
		case viaInternet:
			ways[t.pathLabel()] = true
		case viaUnknown:
			ways["DNS records ssmkit cannot follow"] = true
		}
	}
	ev = append(ev, t.path.evidence...)
	if len(missing) == 0 && len(dnsOff) > 0 {
		return skip("the VPC has endpoints for %s, unused while their private DNS is off (see network.endpoints.private-dns)", strings.Join(dnsOff, ", "))
	}
	if len(missing) == 0 {
		var w []string
		for k := range ways {
			w = append(w, k)
		}
		sort.Strings(w)
		c := pass("the agent reaches Systems Manager through "+strings.Join(w, " and "), ev...)
		if t.path.kind == "other" && ways[t.pathLabel()] {
			c.Status, c.Summary = Warn, fmt.Sprintf("default route through %s: ssmkit cannot see whether it reaches the internet", t.path.target)
		}
		return c
	}
	c := failf("", "no path to Systems Manager for %s: %s", strings.Join(missing, ", "), t.pathProblem()).with(ev...)
	return t.routeFix(c, missing)
}

func (t *target) pathLabel() string {
	switch t.path.kind {
	case "igw":
		return "internet gateway " + t.path.target
	case "nat":
		return "NAT gateway " + t.path.target
	}
	return t.path.target
}

// pathProblem says in words why the default route does not lead out.
func (t *target) pathProblem() string {
	p := t.path
	switch p.problem {
	case "blackhole":
		return fmt.Sprintf("the default route of %s is a blackhole (its target %s is gone)", p.table, orDefault(p.route.Target, "is unset"))
	case "nat-down":
		return fmt.Sprintf("the default route of %s goes to NAT gateway %s, which is %s", p.table, p.route.Target, orDefault(p.nat.State, "gone"))
	case "nat-no-igw":
		return fmt.Sprintf("NAT gateway %s sits in %s, which has no route to an internet gateway", p.nat.ID, p.nat.SubnetID)
	case "no-public-ip":
		return fmt.Sprintf("%s routes to %s but the instance has no public IP", p.table, p.route.Target)
	}
	return "no internet or NAT route and no interface endpoints"
}

// routeFix repairs the default route where it can, else creates the
// missing endpoints.
func (t *target) routeFix(c Check, missing []string) Check {
	p := t.path
	v := t.vpc
	endpoints := t.createEndpoints(missing)
	switch p.problem {
	case "blackhole", "nat-down":
		if n, ok := healthyNAT(v); ok {
			return c.run("create the interface endpoints instead: "+t.vpcEndpointsModule(),
				cmd("aws", "ec2", "replace-route", "--route-table-id", p.table, "--destination-cidr-block", "0.0.0.0/0", "--nat-gateway-id", n.ID))
		}
		if len(v.InternetGateways) > 0 && t.inst.PublicIP != "" {
			return c.run("", cmd("aws", "ec2", "replace-route", "--route-table-id", p.table, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", v.InternetGateways[0]))
		}
	case "nat-no-igw":
		natTable := routeTableFor(v, p.nat.SubnetID)
		if len(v.InternetGateways) == 0 || natTable == nil {
			break
		}
		if natTable.ID == p.table {
			return c.run(fmt.Sprintf("give subnet %s (NAT gateway %s) a route table of its own with 0.0.0.0/0 → %s; the instance's subnet keeps %s with 0.0.0.0/0 → %s",
				p.nat.SubnetID, p.nat.ID, v.InternetGateways[0], p.table, p.nat.ID))
		}
		verb := "create-route"
		if defaultRoute(natTable) != nil {
			verb = "replace-route"
		}
		return c.run("", cmd("aws", "ec2", verb, "--route-table-id", natTable.ID, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", v.InternetGateways[0]))
	case "":
		if n, ok := healthyNAT(v); ok && p.route == nil && p.table != "" {
			return c.run("or create the interface endpoints: "+t.vpcEndpointsModule(),
				cmd("aws", "ec2", "create-route", "--route-table-id", p.table, "--destination-cidr-block", "0.0.0.0/0", "--nat-gateway-id", n.ID))
		}
	}
	return c.run(t.vpcEndpointsModule(), endpoints...)
}

func (t *target) networkVPCDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	v := t.vpc
	ev := []string{fmt.Sprintf("enableDnsSupport=%s", boolText(v.DNSSupport)), fmt.Sprintf("enableDnsHostnames=%s", boolText(v.DNSHostnames))}
	if v.DNSSupport != nil && !*v.DNSSupport {
		return failf("", "DNS resolution is off in %s: the instance cannot resolve the SSM endpoints", v.ID).with(ev...).
			run("", cmd("aws", "ec2", "modify-vpc-attribute", "--vpc-id", v.ID, "--enable-dns-support"))
	}
	if len(t.localEndpoints()) > 0 && v.DNSHostnames != nil && !*v.DNSHostnames {
		return failf("", "DNS hostnames are off in %s: private DNS of interface endpoints does not work", v.ID).with(ev...).
			run("", cmd("aws", "ec2", "modify-vpc-attribute", "--vpc-id", v.ID, "--enable-dns-hostnames"))
	}
	if v.DNSSupport == nil {
		return skip("the DNS attributes of %s are unknown", v.ID)
	}
	return pass("VPC DNS is on", ev...)
}

// localEndpoints are the VPC's interface endpoints for the agent, by
// service.
func (t *target) localEndpoints() map[string]Endpoint {
	out := map[string]Endpoint{}
	for _, e := range t.vpc.Endpoints {
		if e.Type == "Interface" && contains(endpointServices, e.Service) {
			out[e.Service] = e
		}
	}
	return out
}

func (t *target) networkEndpoints() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	local := t.localEndpoints()
	if len(local) == 0 {
		if t.path.internet() {
			return skip("no interface endpoints in %s: the agent goes through %s", t.vpc.ID, t.path.target)
		}
		return skip("no interface endpoints in %s (see network.route)", t.vpc.ID)
	}
	var missing, down, otherAZ, ev, addSubnet []string
	for _, s := range endpointServices {
		e, ok := local[s]
		if !ok {
			if t.access(s).via == "" {
				missing = append(missing, s)
			}
			continue
		}
		ev = append(ev, fmt.Sprintf("%s: %s %s in %s", s, e.ID, e.State, strings.Join(orNone(e.SubnetIDs), ",")))
		if e.State != "available" {
			down = append(down, fmt.Sprintf("%s endpoint %s is %s", s, e.ID, e.State))
		}
		inAZ := false
		for _, sid := range e.SubnetIDs {
			if sn, ok := t.vpc.Subnets[sid]; ok && sn.AvailabilityZone == t.subnet.AvailabilityZone {
				inAZ = true
			}
		}
		if !inAZ && t.subnet.AvailabilityZone != "" {
			otherAZ = append(otherAZ, fmt.Sprintf("%s (%s)", e.ID, s))
			addSubnet = append(addSubnet, cmd("aws", "ec2", "modify-vpc-endpoint", "--vpc-endpoint-id", e.ID, "--add-subnet-ids", t.inst.SubnetID))
		}
	}
	switch {
	case len(missing) > 0:
		return failf("", "the VPC has interface endpoints but none for %s", strings.Join(missing, ", ")).with(ev...).
			run(t.vpcEndpointsModule(), t.createEndpoints(missing)...)
	case len(down) > 0:
		return failf("recreate the endpoint if it stays in this state: "+t.vpcEndpointsModule(), "%s", strings.Join(down, "; ")).with(ev...)
	case len(otherAZ) > 0:
		// The endpoint's private DNS answers from any AZ of the VPC: this
		// works, but depends on another AZ staying up.
		return warnf("", "endpoints %s have no network interface in %s: sessions work across AZs, but stop if that AZ fails",
			strings.Join(otherAZ, ", "), t.subnet.AvailabilityZone).with(ev...).run("", addSubnet...)
	}
	return pass("interface endpoints for ssm, ssmmessages and ec2messages are available in "+t.subnet.AvailabilityZone, ev...)
}

func (t *target) networkPrivateDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	local := t.localEndpoints()
	if len(local) == 0 {
		return skip("no interface endpoints")
	}
	var off, fixes []string
	for _, s := range endpointServices {
		e, ok := local[s]
		if !ok || e.PrivateDNS || t.access(s).via == viaEndpoint {
			continue
		}
		off = append(off, fmt.Sprintf("%s (%s)", s, e.ID))
		fixes = append(fixes, cmd("aws", "ec2", "modify-vpc-endpoint", "--vpc-endpoint-id", e.ID, "--private-dns-enabled"))
	}
	if len(off) == 0 {
		return pass("the agent's names resolve to the interface endpoints")
	}
	if t.path.internet() {
		return warnf("", "private DNS is off for %s: the agent bypasses these endpoints and goes through %s", strings.Join(off, ", "), t.path.target).
			run("Terraform: terraform/modules/vpc-endpoints turns it on", fixes...)
	}
	return failf("", "private DNS is off for %s: the agent resolves the public names, which this subnet cannot reach", strings.Join(off, ", ")).
		run("Terraform: terraform/modules/vpc-endpoints turns it on", fixes...)
}

// sgAllows reports whether rules allow TCP port from/to ip or one of groups.
func sgAllows(rules []SGRule, port int32, ip netip.Addr, groups []string) (bool, bool) {
	prefixOnly := false
	for _, r := range rules {
		if r.Protocol != "-1" && r.Protocol != "tcp" && r.Protocol != "6" {
			continue
		}
		if r.Protocol != "-1" && (port < r.From || port > r.To) {
			continue
		}
		for _, c := range r.CIDRs {
			if pfx, err := netip.ParsePrefix(c); err == nil && ip.IsValid() && pfx.Contains(ip) {
				return true, false
			}
		}
		for _, g := range r.Groups {
			if contains(groups, g) {
				return true, false
			}
		}
		if len(r.PrefixLists) > 0 {
			prefixOnly = true
		}
	}
	return false, prefixOnly
}

// tcp443 is the --ip-permissions of a fix that opens TCP 443 for cidr.
func tcp443(cidr string) string {
	return jsonArg([]map[string]any{{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": []map[string]string{{"CidrIp": cidr}}}})
}

func (t *target) networkEndpointSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	used := t.usedEndpoints()
	if len(used) == 0 {
		return skip("the agent uses no interface endpoint")
	}
	ip, _ := netip.ParseAddr(t.inst.PrivateIP)
	var bad, ev, fixes []string
	seen := map[string]bool{}
	for _, a := range used {
		e := a.ep
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		groups := t.vpc.SecurityGroups
		if a.remote != nil {
			groups = a.remote.Groups
		}
		ok := false
		for _, g := range e.SecurityGroups {
			if sg, found := groups[g]; found {
				if allowed, _ := sgAllows(sg.Ingress, 443, ip, t.inst.SecurityGroups); allowed {
					ok = true
				}
			}
		}
		ev = append(ev, fmt.Sprintf("%s %s groups %s", e.Service, e.ID, strings.Join(orNone(e.SecurityGroups), ",")))
		if !ok && len(e.SecurityGroups) > 0 {
			bad = append(bad, e.Service)
			fixes = append(fixes, cmd("aws", "ec2", "authorize-security-group-ingress", "--group-id", e.SecurityGroups[0],
				"--ip-permissions", tcp443(orDefault(t.vpc.CIDR, t.inst.PrivateIP+"/32"))))
		} else if !ok {
			bad = append(bad, e.Service)
		}
	}
	if len(bad) == 0 {
		return pass("endpoint security groups allow TCP 443 from the instance", ev...)
	}
	return failf("", "the security groups of the %s endpoints do not allow TCP 443 from %s", strings.Join(bad, ", "), t.inst.PrivateIP).with(ev...).
		run("Terraform: terraform/modules/vpc-endpoints allowed_cidr_blocks or allowed_security_group_ids", uniq(fixes)...)
}

// agentRequests are what the agent asks each endpoint for.
var agentRequests = map[string][]string{
	"ssm":         {"ssm:UpdateInstanceInformation"},
	"ssmmessages": {"ssmmessages:CreateControlChannel", "ssmmessages:OpenControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenDataChannel"},
	"ec2messages": {"ec2messages:GetMessages"},
}

// agentPrincipal is who the agent calls AWS as: a session of its role.
func (t *target) agentPrincipal() (principal string, ctx map[string][]string) {
	if t.role == nil || t.role.ARN == "" {
		return "", nil
	}
	a, err := arn.Parse(t.role.ARN)
	if err != nil {
		return "", nil
	}
	session := arn.ARN{Partition: a.Partition, Service: "sts", AccountID: a.AccountID,
		Resource: "assumed-role/" + t.role.Name + "/" + t.inst.ID}.String()
	return "AWS:" + session, map[string][]string{
		"aws:PrincipalArn": {t.role.ARN}, "aws:PrincipalAccount": {a.AccountID}, "aws:SourceVpc": {t.inst.VpcID},
	}
}

func (t *target) networkEndpointPolicy() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	used := t.usedEndpoints()
	if len(used) == 0 {
		return skip("the agent uses no interface endpoint")
	}
	principal, ctx := t.agentPrincipal()
	var bad, fixes, ev []string
	for _, a := range used {
		e := a.ep
		if strings.TrimSpace(e.Policy) == "" {
			continue
		}
		d, err := policy.Parse(e.ID, e.Policy)
		if err != nil {
			bad = append(bad, e.ID+": "+err.Error())
			continue
		}
		c := map[string][]string{"aws:SourceVpce": {e.ID}}
		for k, v := range ctx {
			c[k] = v
		}
		var blocked []string
		for _, act := range agentRequests[e.Service] {
			if r := policy.Evaluate([]policy.Document{d}, policy.Request{Action: act, Resource: "*", Principal: principal, Context: c}); r.Decision != policy.Allowed {
				by := ""
				if r.By != "" {
					by = " by " + r.By
				}
				bad = append(bad, fmt.Sprintf("%s: %s %s%s", e.ID, act, r.Decision, by))
				blocked = append(blocked, act)
			}
		}
		if len(blocked) == 0 {
			continue
		}
		if principal != "" && len(policy.Denies([]policy.Document{d}, policy.Request{Action: blocked[0], Resource: "*", Principal: principal, Context: c})) == 0 {
			// Keep the policy's restrictions and let the role through.
			fixes = append(fixes, cmd("aws", "ec2", "modify-vpc-endpoint", "--vpc-endpoint-id", e.ID, "--policy-document",
				policy.With(d, map[string]any{"Sid": sanitizeSid("ssmkitAgent" + t.role.Name), "Effect": "Allow",
					"Principal": map[string]string{"AWS": t.role.ARN}, "Action": blocked, "Resource": "*"})))
		} else {
			fixes = append(fixes, cmd("aws", "ec2", "modify-vpc-endpoint", "--vpc-endpoint-id", e.ID, "--reset-policy"))
		}
	}
	if principal != "" {
		ev = append(ev, "evaluated for "+strings.TrimPrefix(principal, "AWS:"))
	} else {
		ev = append(ev, "the agent's role is unknown: Principal elements not evaluated")
	}
	if len(bad) == 0 {
		return pass("endpoint policies allow the agent's actions", ev...)
	}
	return failf("", "endpoint policies block the agent: %s", strings.Join(bad, "; ")).with(ev...).
		run("or reset the endpoint policy to full access (modify-vpc-endpoint --reset-policy)", uniq(fixes)...)
}

func (t *target) networkInstanceSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	dests := t.destinations()
	if len(dests) == 0 {
		return skip("the agent has no path to check (see network.route)")
	}
	var missing, fixes []string
	for _, d := range dests {
		ok, prefix := false, false
		for _, g := range t.inst.SecurityGroups {
			sg, found := t.vpc.SecurityGroups[g]
			if !found {
				continue
			}
			a, p := sgAllows(sg.Egress, 443, d.ip, d.groups)
			ok, prefix = ok || a, prefix || p
		}
		if !ok && !prefix {
			missing = append(missing, d.label)
			if len(t.inst.SecurityGroups) > 0 {
				fixes = append(fixes, cmd("aws", "ec2", "authorize-security-group-egress", "--group-id", t.inst.SecurityGroups[0], "--ip-permissions", tcp443(d.cidr)))
			}
		}
	}
	ev := []string{"instance groups: " + strings.Join(orNone(t.inst.SecurityGroups), ",")}
	if len(missing) == 0 {
		return pass("the instance's security groups allow TCP 443 out", ev...)
	}
	return failf("", "the instance's security groups do not allow TCP 443 out to %s", strings.Join(missing, ", ")).with(ev...).run("", fixes...)
}

// naclDecision evaluates ACL rules in order for TCP port and ip: whether
// they allow it, and the deciding entry (nil: the default deny).
func naclDecision(entries []NACLEntry, egress bool, port int32, ip netip.Addr) (bool, *NACLEntry) {
	sorted := append([]NACLEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Number < sorted[j].Number })
	for i, e := range sorted {
		if e.Egress != egress || (e.Protocol != "-1" && e.Protocol != "6") {
			continue
		}
		if e.Protocol == "6" && (port < e.From || port > e.To) {
			continue
		}
		pfx, err := netip.ParsePrefix(e.CIDR)
		if err != nil || !pfx.Contains(ip) {
			continue
		}
		return e.Allow, &sorted[i]
	}
	return false, nil
}

func direction(egress bool) string {
	if egress {
		return "--egress"
	}
	return "--ingress"
}

// naclRepair returns the commands that make entries allow TCP port (or the
// ephemeral range) for d in one direction: every deny rule that decides
// it, in turn, is deleted by number and direction; when the default rule
// decides, an allow rule is created with a free number.
func naclRepair(acl *NACL, egress bool, ports []int32, d destination) (problems, cmds []string) {
	entries := append([]NACLEntry(nil), acl.Entries...)
	what := map[bool]string{true: "TCP 443 out to %s", false: "replies to ports 1024-65535 from %s"}[egress]
	for range 32 {
		var decider *NACLEntry
		allowed := true
		for _, port := range ports {
			if ok, by := naclDecision(entries, egress, port, d.ip); !ok {
				allowed, decider = false, by
				break
			}
		}
		if allowed {
			return problems, cmds
		}
		if decider == nil {
			problems = append(problems, fmt.Sprintf(what+" denied by the default rule", d.label))
			args := []string{"aws", "ec2", "create-network-acl-entry", "--network-acl-id", acl.ID, direction(egress),
				"--rule-number", fmt.Sprint(freeRuleNumber(entries, egress)), "--protocol", "tcp"}
			if egress {
				args = append(args, "--port-range", "From=443,To=443")
			} else {
				args = append(args, "--port-range", "From=1024,To=65535")
			}
			cmds = append(cmds, cmd(append(args, "--cidr-block", d.cidr, "--rule-action", "allow")...))
			return problems, cmds
		}
		problems = append(problems, fmt.Sprintf(what+" denied by %s rule %d", d.label, directionWord(egress), decider.Number))
		cmds = append(cmds, cmd("aws", "ec2", "delete-network-acl-entry", "--network-acl-id", acl.ID, direction(egress),
			"--rule-number", fmt.Sprint(decider.Number)))
		n := decider.Number
		entries = deleteEntry(entries, egress, n)
	}
	return problems, cmds
}

func directionWord(egress bool) string {
	if egress {
		return "outbound"
	}
	return "inbound"
}

func deleteEntry(entries []NACLEntry, egress bool, n int32) []NACLEntry {
	var out []NACLEntry
	for _, e := range entries {
		if e.Egress != egress || e.Number != n {
			out = append(out, e)
		}
	}
	return out
}

// freeRuleNumber is the first multiple of 100 not used in a direction.
func freeRuleNumber(entries []NACLEntry, egress bool) int32 {
	used := map[int32]bool{}
	for _, e := range entries {
		if e.Egress == egress {
			used[e.Number] = true
		}
	}
	n := int32(100)
	for used[n] {
		n += 100
	}
	return n
}

func (t *target) networkNACL() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	var acl *NACL
	for i, a := range t.vpc.NACLs {
		if contains(a.SubnetIDs, t.inst.SubnetID) {
			acl = &t.vpc.NACLs[i]
		}
	}
	if acl == nil {
		for i, a := range t.vpc.NACLs {
			if a.Default {
				acl = &t.vpc.NACLs[i]
			}
		}
	}
	if acl == nil {
		return skip("no network ACL found for %s", t.inst.SubnetID)
	}
	dests := t.destinations()
	if len(dests) == 0 {
		return skip("the agent has no path to check (see network.route)")
	}
	var problems, cmds []string
	for _, d := range dests {
		p, c := naclRepair(acl, true, []int32{443}, d)
		problems, cmds = append(problems, p...), append(cmds, c...)
		p, c = naclRepair(acl, false, []int32{1024, 32768, 49152, 60999, 65535}, d)
		problems, cmds = append(problems, p...), append(cmds, c...)
	}
	ev := []string{"the hub's network ACLs are not checked"}
	if len(problems) == 0 {
		return pass(fmt.Sprintf("network ACL %s allows TCP 443 out and the replies back", acl.ID))
	}
	return failf("", "network ACL %s blocks the agent: %s", acl.ID, strings.Join(problems, "; ")).with(ev[:0]...).run("", uniq(cmds)...)
}

func (t *target) networkLoggingPath() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	p := t.prefs()
	// Bucket and log group encryption happen inside S3 and CloudWatch
	// Logs: only kmsKeyId (the session's own encryption) makes the agent
	// call KMS.
	var need []string
	if p.S3Bucket != "" {
		need = append(need, "s3")
	}
	if p.LogGroup != "" {
		need = append(need, "logs")
	}
	if p.KMSKeyID != "" {
		need = append(need, "kms")
	}
	if len(need) == 0 {
		return skip("session logging and KMS encryption are off")
	}
	var missing, ev []string
	for _, s := range need {
		a := t.access(s)
		ev = append(ev, s+": "+a.why)
		if a.via == "" {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return pass("the instance reaches "+strings.Join(need, ", ")+" for logging and encryption", ev...)
	}
	return failf("", "the preferences need %s, which the instance cannot reach", strings.Join(missing, ", ")).with(ev...).
		run("Terraform: terraform/modules/vpc-endpoints with enable_s3_gateway_endpoint, enable_logs_endpoint, enable_kms_endpoint", t.createEndpoints(missing)...)
}
