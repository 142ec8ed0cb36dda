package doctor

import (
	"fmt"
	"net/netip"
	"strings"
)

// How the instance reaches an AWS service (access.via).
const (
	// viaEndpoint: an interface endpoint in the instance's VPC, found by
	// its private DNS or a private hosted zone.
	viaEndpoint = "endpoint"
	// viaHub: an interface endpoint in another VPC (a hub), named by a
	// private hosted zone associated with this VPC and reached through a
	// peering connection or transit gateway route.
	viaHub = "hub"
	// viaGateway: an S3 gateway endpoint on the subnet's route table.
	viaGateway = "gateway"
	// viaInternet: the public endpoint, through an internet gateway, a
	// NAT gateway or another default route.
	viaInternet = "internet"
	// viaUnknown: DNS answers from a record ssmkit cannot follow; the
	// checks neither pass nor fail the path on it.
	viaUnknown = "unknown"
)

// access is how the instance reaches one service ("" via: it does not).
type access struct {
	via string
	// ep is the endpoint used (viaEndpoint, viaHub, viaGateway).
	ep Endpoint
	// remote is the hub endpoint (viaHub).
	remote *RemoteEndpoint
	// why is the evidence.
	why string
	// dnsOff: the VPC has an interface endpoint for the service, unused
	// because its private DNS is off (network.endpoints.private-dns).
	dnsOff bool
}

// netPath is the instance's default route to the internet.
type netPath struct {
	kind   string // "igw", "nat", "other", "none"
	target string
	table  string
	// route is the 0.0.0.0/0 route, if any.
	route    *Route
	evidence []string
	// problem says why a default route does not lead out: "blackhole",
	// "nat-down" (the NAT gateway is not available), "nat-no-igw" (its
	// subnet has no route to an internet gateway), "no-public-ip".
	problem string
	// nat is the NAT gateway of the route (nat-… targets).
	nat NATGateway
}

func (p netPath) internet() bool { return p.kind == "igw" || p.kind == "nat" || p.kind == "other" }

// routeTableFor returns a subnet's route table: its own or the VPC's main.
func routeTableFor(vpc *VPC, subnetID string) *RouteTable {
	var main *RouteTable
	for i, rt := range vpc.RouteTables {
		if contains(rt.SubnetIDs, subnetID) {
			return &vpc.RouteTables[i]
		}
		if rt.Main {
			main = &vpc.RouteTables[i]
		}
	}
	return main
}

func (t *target) routeTable() *RouteTable { return routeTableFor(t.vpc, t.inst.SubnetID) }

// defaultRoute returns the 0.0.0.0/0 route of a table.
func defaultRoute(rt *RouteTable) *Route {
	if rt == nil {
		return nil
	}
	for i, r := range rt.Routes {
		if r.Destination == "0.0.0.0/0" {
			return &rt.Routes[i]
		}
	}
	return nil
}

// toIGW reports whether a subnet's route table sends 0.0.0.0/0 to an
// internet gateway, and which.
func toIGW(vpc *VPC, subnetID string) (string, bool) {
	r := defaultRoute(routeTableFor(vpc, subnetID))
	if r != nil && r.State != "blackhole" && strings.HasPrefix(r.Target, "igw-") {
		return r.Target, true
	}
	return "", false
}

// healthyNAT returns an available NAT gateway of the VPC whose subnet
// routes to an internet gateway, if there is one.
func healthyNAT(vpc *VPC) (NATGateway, bool) {
	var best NATGateway
	found := false
	for _, n := range vpc.NATGateways {
		if _, ok := toIGW(vpc, n.SubnetID); ok && n.State == "available" && (!found || n.ID < best.ID) {
			best, found = n, true
		}
	}
	return best, found
}

func (t *target) findPath() netPath {
	p := netPath{kind: "none"}
	rt := t.routeTable()
	if rt == nil {
		p.evidence = append(p.evidence, "no route table for "+t.inst.SubnetID)
		return p
	}
	p.table = rt.ID
	r := defaultRoute(rt)
	if r == nil {
		p.evidence = append(p.evidence, rt.ID+": no default route")
		return p
	}
	p.route = r
	p.evidence = append(p.evidence, fmt.Sprintf("%s: 0.0.0.0/0 → %s (%s)", rt.ID, orDefault(r.Target, "nothing"), r.State))
	switch {
	case r.State == "blackhole":
		p.problem = "blackhole"
	case strings.HasPrefix(r.Target, "igw-"):
		if t.inst.PublicIP == "" {
			p.problem = "no-public-ip"
			p.evidence = append(p.evidence, "the instance has no public IP, so the internet gateway route does not serve it")
			return p
		}
		p.kind, p.target = "igw", r.Target
		p.evidence = append(p.evidence, "PublicIp="+t.inst.PublicIP)
	case strings.HasPrefix(r.Target, "nat-"):
		n, ok := t.vpc.NATGateways[r.Target]
		p.nat = n
		switch {
		case !ok && len(t.vpc.NATGateways) == 0:
			// NAT gateways not listed (an older reader, or hand-built
			// facts): trust the route.
			p.kind, p.target = "nat", r.Target
		case !ok || n.State != "available":
			p.problem = "nat-down"
			p.evidence = append(p.evidence, fmt.Sprintf("NAT gateway %s is %s", r.Target, orDefault(n.State, "gone")))
		default:
			if igw, ok := toIGW(t.vpc, n.SubnetID); ok {
				p.kind, p.target = "nat", r.Target
				p.evidence = append(p.evidence, fmt.Sprintf("NAT gateway %s in %s, whose route table sends 0.0.0.0/0 to %s", n.ID, n.SubnetID, igw))
			} else {
				p.problem = "nat-no-igw"
				p.evidence = append(p.evidence, fmt.Sprintf("NAT gateway %s sits in %s, whose route table has no route to an internet gateway", n.ID, n.SubnetID))
			}
		}
	case r.Target == "":
		p.problem = "blackhole"
	default:
		p.kind, p.target = "other", r.Target
	}
	return p
}

// access works out how the instance reaches svc: a private hosted zone
// for the name decides first (DNS answers from it), then a local
// interface endpoint with private DNS, an S3 gateway endpoint, the
// internet path.
func (t *target) access(svc string) access {
	if a, ok := t.accessCache[svc]; ok {
		return a
	}
	a := t.findAccess(svc)
	t.accessCache[svc] = a
	return a
}

func (t *target) findAccess(svc string) access {
	host := serviceHost(svc, t.f.Region)
	for _, z := range t.vpc.Zones {
		if !zoneCovers(z.Name, host) {
			continue
		}
		if z.Err != nil {
			return access{via: viaUnknown, why: fmt.Sprintf("private hosted zone %s answers for %s; its records could not be read: %s", z.Name, host, shortErr(z.Err))}
		}
		vpce, ok := z.Aliases[host]
		if !ok {
			return access{why: fmt.Sprintf("private hosted zone %s (%s) answers for %s but has no record for it: the name does not resolve in %s", z.Name, z.ID, host, t.vpc.ID)}
		}
		if vpce == "" {
			return access{via: viaUnknown, why: fmt.Sprintf("private hosted zone %s answers for %s with a record that names no endpoint", z.Name, host)}
		}
		for _, e := range t.vpc.Endpoints {
			if e.ID == vpce {
				return access{via: viaEndpoint, ep: e, why: fmt.Sprintf("%s → %s (zone %s)", host, e.ID, z.Name)}
			}
		}
		re := t.f.RemoteEndpoints[vpce]
		switch {
		case re == nil || re.VpcID == "" && re.Err == nil:
			return access{why: fmt.Sprintf("private hosted zone %s sends %s to %s, which does not exist", z.Name, host, vpce)}
		case re.Err != nil:
			return access{via: viaUnknown, why: fmt.Sprintf("private hosted zone %s sends %s to %s, which could not be read: %s", z.Name, host, vpce, shortErr(re.Err))}
		}
		return t.hubAccess(host, z, re)
	}
	for _, e := range t.vpc.Endpoints {
		if e.Service == svc && e.Type == "Interface" && e.PrivateDNS {
			return access{via: viaEndpoint, ep: e, why: fmt.Sprintf("%s → %s (private DNS)", host, e.ID)}
		}
	}
	rt := t.routeTable()
	for _, e := range t.vpc.Endpoints {
		if e.Service == svc && e.Type == "Gateway" && rt != nil && contains(e.RouteTableIDs, rt.ID) {
			return access{via: viaGateway, ep: e, why: fmt.Sprintf("gateway endpoint %s on %s", e.ID, rt.ID)}
		}
	}
	if t.path.internet() {
		return access{via: viaInternet, why: host + " through " + t.path.target}
	}
	for _, e := range t.vpc.Endpoints {
		if e.Service == svc && e.Type == "Interface" {
			return access{dnsOff: true, why: fmt.Sprintf("endpoint %s has private DNS off, so %s resolves to the public address, which %s cannot reach", e.ID, host, t.inst.SubnetID)}
		}
	}
	return access{why: "no endpoint for " + host + " and no internet path"}
}

// hubAccess follows a hosted zone to an endpoint in another VPC: the
// instance's route table needs a route to the endpoint's subnets through
// a peering connection or transit gateway.
func (t *target) hubAccess(host string, z HostedZone, re *RemoteEndpoint) access {
	rt := t.routeTable()
	for _, c := range re.SubnetCIDRs {
		sub, err := netip.ParsePrefix(c)
		if err != nil || rt == nil {
			continue
		}
		var best *Route
		for i, r := range rt.Routes {
			dst, err := netip.ParsePrefix(r.Destination)
			if err != nil || !dst.Contains(sub.Addr()) || best != nil && bitsOf(best.Destination) >= dst.Bits() {
				continue
			}
			best = &rt.Routes[i]
		}
		if best != nil && best.State != "blackhole" && (strings.HasPrefix(best.Target, "pcx-") || strings.HasPrefix(best.Target, "tgw-")) {
			return access{via: viaHub, ep: re.Endpoint, remote: re,
				why: fmt.Sprintf("%s → %s in %s (zone %s), reached by %s → %s", host, re.ID, re.VpcID, z.Name, best.Destination, best.Target)}
		}
	}
	return access{why: fmt.Sprintf("private hosted zone %s sends %s to %s in %s (%s), but %s has no active route to it through a peering connection or transit gateway",
		z.Name, host, re.ID, re.VpcID, strings.Join(orNone(re.SubnetCIDRs), ", "), orUnknown(t.path.table))}
}

func bitsOf(cidr string) int {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return -1
	}
	return p.Bits()
}

// agentAccess is how the agent reaches each of its three services.
func (t *target) agentAccess() map[string]access {
	out := map[string]access{}
	for _, s := range endpointServices {
		out[s] = t.access(s)
	}
	return out
}

// usedEndpoints are the interface endpoints (local or hub) the agent's
// traffic goes to, in service order.
func (t *target) usedEndpoints() []access {
	var out []access
	for _, s := range endpointServices {
		if a := t.access(s); a.via == viaEndpoint || a.via == viaHub {
			out = append(out, a)
		}
	}
	return out
}

// sampleInternetIP stands for "somewhere on the internet" in rule checks.
var sampleInternetIP = netip.MustParseAddr("52.94.0.1")

// destination is where some of the agent's TCP 443 connections go.
type destination struct {
	ip   netip.Addr
	cidr string // what a fix opens: the endpoint's subnet, or 0.0.0.0/0
	// groups are the endpoint's security groups (an egress rule may name
	// them instead of addresses).
	groups []string
	label  string
}

// destinations are where the agent's TCP 443 connections go.
func (t *target) destinations() []destination {
	var out []destination
	seen := map[string]bool{}
	add := func(d destination) {
		if !seen[d.cidr] {
			seen[d.cidr] = true
			out = append(out, d)
		}
	}
	for _, s := range endpointServices {
		a := t.access(s)
		switch a.via {
		case viaEndpoint:
			for _, sid := range a.ep.SubnetIDs {
				if sn, ok := t.vpc.Subnets[sid]; ok {
					if pfx, err := netip.ParsePrefix(sn.CIDR); err == nil {
						add(destination{ip: firstHost(pfx), cidr: pfx.Masked().String(), groups: a.ep.SecurityGroups, label: "endpoint " + a.ep.ID})
					}
				}
			}
		case viaHub:
			for _, c := range a.remote.SubnetCIDRs {
				if pfx, err := netip.ParsePrefix(c); err == nil {
					add(destination{ip: firstHost(pfx), cidr: pfx.Masked().String(), groups: a.ep.SecurityGroups, label: "endpoint " + a.ep.ID + " in " + a.remote.VpcID})
				}
			}
		case viaInternet:
			add(destination{ip: sampleInternetIP, cidr: "0.0.0.0/0", label: "the internet"})
		}
	}
	return out
}

// firstHost is an address inside a subnet where an endpoint interface may
// sit (the first four addresses are AWS's).
func firstHost(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next().Next().Next().Next()
}
