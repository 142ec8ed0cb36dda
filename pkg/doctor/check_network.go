package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

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

// routeTable returns the subnet's route table: its own or the VPC's main.
func (t *target) routeTable() *RouteTable {
	var main *RouteTable
	for i, rt := range t.vpc.RouteTables {
		if contains(rt.SubnetIDs, t.inst.SubnetID) {
			return &t.vpc.RouteTables[i]
		}
		if rt.Main {
			main = &t.vpc.RouteTables[i]
		}
	}
	return main
}

func (t *target) findPath() netPath {
	p := netPath{kind: "none"}
	rt := t.routeTable()
	if rt == nil {
		p.evidence = append(p.evidence, "no route table for "+t.inst.SubnetID)
		return p
	}
	p.table = rt.ID
	for _, r := range rt.Routes {
		if r.Destination != "0.0.0.0/0" {
			continue
		}
		p.evidence = append(p.evidence, fmt.Sprintf("%s: 0.0.0.0/0 → %s (%s)", rt.ID, r.Target, r.State))
		if r.State == "blackhole" {
			continue
		}
		switch {
		case strings.HasPrefix(r.Target, "igw-"):
			if t.inst.PublicIP == "" {
				p.evidence = append(p.evidence, "the instance has no public IP, so the internet gateway route does not serve it")
				continue
			}
			p.kind, p.target = "igw", r.Target
			p.evidence = append(p.evidence, "PublicIp="+t.inst.PublicIP)
		case strings.HasPrefix(r.Target, "nat-"):
			p.kind, p.target = "nat", r.Target
		default:
			p.kind, p.target = "other", r.Target
		}
	}
	if len(p.evidence) == 0 {
		p.evidence = append(p.evidence, rt.ID+": no default route")
	}
	return p
}

func (t *target) endpointsComplete() bool {
	for _, s := range endpointServices {
		if _, ok := t.endpoints[s]; !ok {
			return false
		}
	}
	return true
}

// endpointsUsed reports whether DNS sends the agent to the interface
// endpoints (private DNS on) or they are the only way out.
func (t *target) endpointsUsed() bool {
	for _, e := range t.endpoints {
		if e.PrivateDNS {
			return true
		}
	}
	return len(t.endpoints) > 0 && !t.path.internet()
}

func (t *target) vpcEndpointsFix() string {
	return fmt.Sprintf("Terraform: terraform/modules/vpc-endpoints with vpc_id = %q and subnet_ids = [%q]", t.inst.VpcID, t.inst.SubnetID)
}

func (t *target) networkRoute() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	p := t.path
	switch p.kind {
	case "igw":
		return pass("default route through internet gateway "+p.target+" and a public IP", p.evidence...)
	case "nat":
		return pass("default route through NAT gateway "+p.target, p.evidence...)
	case "other":
		return warnf("", "default route through %s: ssmkit cannot see whether it reaches the internet", p.target).with(p.evidence...)
	}
	if t.endpointsComplete() {
		return pass("no internet route; the VPC has interface endpoints for ssm, ssmmessages and ec2messages", p.evidence...)
	}
	fix := fmt.Sprintf("add a default route through a NAT gateway: `aws ec2 create-route --route-table-id %s --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat-id>`, or create the interface endpoints (%s)",
		orUnknown(p.table), t.vpcEndpointsFix())
	return failf(fix, "no path to Systems Manager: no internet or NAT route and no interface endpoints for %s", strings.Join(t.missingEndpoints(), ", ")).with(p.evidence...)
}

func (t *target) missingEndpoints() []string {
	var out []string
	for _, s := range endpointServices {
		if _, ok := t.endpoints[s]; !ok {
			out = append(out, s)
		}
	}
	return out
}

func (t *target) networkVPCDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	v := t.vpc
	ev := []string{fmt.Sprintf("enableDnsSupport=%s", boolText(v.DNSSupport)), fmt.Sprintf("enableDnsHostnames=%s", boolText(v.DNSHostnames))}
	if v.DNSSupport != nil && !*v.DNSSupport {
		return failf(fmt.Sprintf("aws ec2 modify-vpc-attribute --vpc-id %s --enable-dns-support", v.ID),
			"DNS resolution is off in %s: the instance cannot resolve the SSM endpoints", v.ID).with(ev...)
	}
	if len(t.endpoints) > 0 && v.DNSHostnames != nil && !*v.DNSHostnames {
		return failf(fmt.Sprintf("aws ec2 modify-vpc-attribute --vpc-id %s --enable-dns-hostnames", v.ID),
			"DNS hostnames are off in %s: private DNS of interface endpoints does not work", v.ID).with(ev...)
	}
	if v.DNSSupport == nil {
		return skip("the DNS attributes of %s are unknown", v.ID)
	}
	return pass("VPC DNS is on", ev...)
}

func (t *target) networkEndpoints() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		if t.path.internet() {
			return skip("no interface endpoints: the instance reaches Systems Manager through %s", t.path.target)
		}
		return skip("no interface endpoints (see network.route)")
	}
	var problems, ev []string
	for _, s := range endpointServices {
		e, ok := t.endpoints[s]
		if !ok {
			problems = append(problems, s+" has no endpoint")
			continue
		}
		ev = append(ev, fmt.Sprintf("%s: %s %s", s, e.ID, e.State))
		if e.State != "available" {
			problems = append(problems, fmt.Sprintf("%s endpoint %s is %s", s, e.ID, e.State))
		}
		inAZ := false
		for _, sid := range e.SubnetIDs {
			if sn, ok := t.vpc.Subnets[sid]; ok && sn.AvailabilityZone == t.subnet.AvailabilityZone {
				inAZ = true
			}
		}
		if !inAZ {
			problems = append(problems, fmt.Sprintf("%s endpoint %s has no subnet in %s", s, e.ID, t.subnet.AvailabilityZone))
		}
	}
	if len(problems) == 0 {
		return pass("interface endpoints for ssm, ssmmessages and ec2messages are available in "+t.subnet.AvailabilityZone, ev...)
	}
	c := failf(t.vpcEndpointsFix(), "%s", strings.Join(problems, "; ")).with(ev...)
	if t.path.internet() {
		c.Status = Warn
	}
	return c
}

func (t *target) networkPrivateDNS() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	var off []string
	var fixes []string
	for _, s := range endpointServices {
		if e, ok := t.endpoints[s]; ok && !e.PrivateDNS {
			off = append(off, fmt.Sprintf("%s (%s)", s, e.ID))
			fixes = append(fixes, fmt.Sprintf("aws ec2 modify-vpc-endpoint --vpc-endpoint-id %s --private-dns-enabled", e.ID))
		}
	}
	if len(off) == 0 {
		return pass("private DNS is on for every interface endpoint")
	}
	fix := strings.Join(fixes, " && ") + " (Terraform: terraform/modules/vpc-endpoints turns it on)"
	if t.path.internet() {
		return warnf(fix, "private DNS is off for %s: the agent bypasses these endpoints and goes through %s", strings.Join(off, ", "), t.path.target)
	}
	return failf(fix, "private DNS is off for %s: the agent resolves the public names, which this subnet cannot reach", strings.Join(off, ", "))
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

func (t *target) usedEndpoints() []Endpoint {
	var out []Endpoint
	for _, s := range endpointServices {
		if e, ok := t.endpoints[s]; ok {
			out = append(out, e)
		}
	}
	return out
}

func (t *target) networkEndpointSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	ip, _ := netip.ParseAddr(t.inst.PrivateIP)
	var bad, ev, fixes []string
	for _, e := range t.usedEndpoints() {
		ok := false
		for _, g := range e.SecurityGroups {
			sg, found := t.vpc.SecurityGroups[g]
			if !found {
				continue
			}
			if allowed, _ := sgAllows(sg.Ingress, 443, ip, t.inst.SecurityGroups); allowed {
				ok = true
			}
		}
		ev = append(ev, fmt.Sprintf("%s %s groups %s", e.Service, e.ID, strings.Join(orNone(e.SecurityGroups), ",")))
		if !ok {
			bad = append(bad, e.Service)
			sg := "<endpoint-sg>"
			if len(e.SecurityGroups) > 0 {
				sg = e.SecurityGroups[0]
			}
			fixes = append(fixes, fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port 443 --cidr %s", sg, orDefault(t.vpc.CIDR, t.inst.PrivateIP+"/32")))
		}
	}
	if len(bad) == 0 {
		return pass("endpoint security groups allow TCP 443 from the instance", ev...)
	}
	fixes = uniq(fixes)
	fix := strings.Join(fixes, " && ") + " (Terraform: terraform/modules/vpc-endpoints allowed_cidr_blocks or allowed_security_group_ids)"
	c := failf(fix, "the security groups of the %s endpoints do not allow TCP 443 from %s", strings.Join(bad, ", "), t.inst.PrivateIP).with(ev...)
	if !t.endpointsUsed() {
		c.Status = Warn
	}
	return c
}

func (t *target) networkEndpointPolicy() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	if len(t.endpoints) == 0 {
		return skip("no interface endpoints")
	}
	need := map[string][]string{
		"ssm":         {"ssm:UpdateInstanceInformation"},
		"ssmmessages": {"ssmmessages:CreateControlChannel", "ssmmessages:OpenControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenDataChannel"},
		"ec2messages": {"ec2messages:GetMessages"},
	}
	var bad []string
	var fixes []string
	for _, e := range t.usedEndpoints() {
		if strings.TrimSpace(e.Policy) == "" {
			continue
		}
		d, err := policy.Parse(e.ID, e.Policy)
		if err != nil {
			bad = append(bad, e.ID+": "+err.Error())
			continue
		}
		for _, a := range need[e.Service] {
			if r := policy.Evaluate([]policy.Document{d}, policy.Request{Action: a, Resource: "*"}); r.Decision != policy.Allowed {
				bad = append(bad, fmt.Sprintf("%s: %s %s", e.ID, a, r.Decision))
				fixes = append(fixes, "aws ec2 modify-vpc-endpoint --vpc-endpoint-id "+e.ID+" --reset-policy")
			}
		}
	}
	if len(bad) == 0 {
		return pass("endpoint policies allow the agent's actions")
	}
	return failf(strings.Join(uniq(fixes), " && "), "endpoint policies block the agent: %s", strings.Join(bad, "; "))
}

// sampleInternetIP stands for "somewhere on the internet" in rule checks.
var sampleInternetIP = netip.MustParseAddr("52.94.0.1")

// destinations are where the agent's TCP 443 connections go.
func (t *target) destinations() (ips []netip.Addr, groups []string, label string) {
	if t.endpointsUsed() {
		for _, e := range t.usedEndpoints() {
			groups = append(groups, e.SecurityGroups...)
			for _, sid := range e.SubnetIDs {
				if sn, ok := t.vpc.Subnets[sid]; ok {
					if pfx, err := netip.ParsePrefix(sn.CIDR); err == nil {
						ips = append(ips, pfx.Addr().Next().Next().Next().Next())
					}
				}
			}
		}
		return ips, groups, "the interface endpoints"
	}
	return []netip.Addr{sampleInternetIP}, nil, "the internet"
}

func (t *target) networkInstanceSG() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	ips, groups, label := t.destinations()
	var missing []string
	for _, ip := range ips {
		ok, prefix := false, false
		for _, g := range t.inst.SecurityGroups {
			sg, found := t.vpc.SecurityGroups[g]
			if !found {
				continue
			}
			a, p := sgAllows(sg.Egress, 443, ip, groups)
			ok, prefix = ok || a, prefix || p
		}
		if !ok && !prefix {
			missing = append(missing, ip.String())
		}
	}
	ev := []string{"instance groups: " + strings.Join(orNone(t.inst.SecurityGroups), ",")}
	if len(missing) == 0 && len(ips) > 0 {
		return pass("the instance's security groups allow TCP 443 out to "+label, ev...)
	}
	sg := "<instance-sg>"
	if len(t.inst.SecurityGroups) > 0 {
		sg = t.inst.SecurityGroups[0]
	}
	cidr := "0.0.0.0/0"
	if label != "the internet" {
		cidr = orDefault(t.vpc.CIDR, cidr)
	}
	return failf(fmt.Sprintf("aws ec2 authorize-security-group-egress --group-id %s --ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=%s}]'", sg, cidr),
		"the instance's security groups do not allow TCP 443 out to %s", label).with(ev...)
}

// naclDecision evaluates ACL rules in order for TCP port and ip.
func naclDecision(entries []NACLEntry, egress bool, port int32, ip netip.Addr) (bool, string) {
	sorted := append([]NACLEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Number < sorted[j].Number })
	for _, e := range sorted {
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
		return e.Allow, fmt.Sprintf("rule %d", e.Number)
	}
	return false, "no rule (default deny)"
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
	ips, _, label := t.destinations()
	var problems []string
	for _, ip := range ips {
		if ok, by := naclDecision(acl.Entries, true, 443, ip); !ok {
			problems = append(problems, fmt.Sprintf("TCP 443 out to %s denied by %s", ip, by))
		}
		for _, port := range []int32{1024, 32768, 49152, 60999, 65535} {
			if ok, by := naclDecision(acl.Entries, false, port, ip); !ok {
				problems = append(problems, fmt.Sprintf("return traffic to port %d from %s denied by %s", port, ip, by))
				break
			}
		}
	}
	if len(problems) == 0 {
		return pass(fmt.Sprintf("network ACL %s allows TCP 443 out to %s and the replies back", acl.ID, label))
	}
	cidr := "0.0.0.0/0"
	if label != "the internet" {
		cidr = orDefault(t.vpc.CIDR, cidr)
	}
	fix := fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %[1]s --egress --rule-number 100 --protocol tcp --port-range From=443,To=443 --cidr-block %[2]s --rule-action allow && "+
		"aws ec2 create-network-acl-entry --network-acl-id %[1]s --ingress --rule-number 100 --protocol tcp --port-range From=1024,To=65535 --cidr-block %[2]s --rule-action allow", acl.ID, cidr)
	return failf(fix, "network ACL %s blocks the agent: %s", acl.ID, strings.Join(problems, "; "))
}

func (t *target) networkLoggingPath() Check {
	if c, ok := t.networkSkip(); ok {
		return c
	}
	p := t.prefs()
	need := map[string]bool{}
	if p.S3Bucket != "" {
		need["s3"] = true
	}
	if p.LogGroup != "" {
		need["logs"] = true
	}
	if p.KMSKeyID != "" || p.S3Encryption || p.CWEncryption {
		need["kms"] = true
	}
	if len(need) == 0 {
		return skip("session logging and KMS encryption are off")
	}
	if t.path.internet() {
		return pass("logging and KMS traffic goes through " + t.path.target)
	}
	have := map[string]bool{}
	for _, e := range t.vpc.Endpoints {
		if e.State == "available" {
			have[e.Service] = true
		}
	}
	var missing, vars []string
	for _, s := range []string{"s3", "logs", "kms"} {
		if need[s] && !have[s] {
			missing = append(missing, s)
			switch s {
			case "s3":
				vars = append(vars, "enable_s3_gateway_endpoint = true")
			case "logs":
				vars = append(vars, "enable_logs_endpoint = true")
			case "kms":
				vars = append(vars, "enable_kms_endpoint = true")
			}
		}
	}
	if len(missing) == 0 {
		return pass("the VPC has endpoints for logging and KMS")
	}
	return failf("Terraform: terraform/modules/vpc-endpoints with "+strings.Join(vars, ", "),
		"the preferences need %s, but the subnet has no internet path and the VPC has no endpoint for it", strings.Join(missing, ", "))
}
