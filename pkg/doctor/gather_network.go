package doctor

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// network describes every VPC of the targets with one call per resource
// type for all VPCs together, plus the two DNS attributes per VPC.
func (g *Gatherer) network(r *phase, f *Facts) {
	var vpcIDs []string
	for _, i := range f.Instances {
		if i.VpcID != "" && f.VPCs[i.VpcID] == nil {
			f.VPCs[i.VpcID] = &VPC{ID: i.VpcID, Subnets: map[string]Subnet{}, SecurityGroups: map[string]SecurityGroup{}, NATGateways: map[string]NATGateway{}}
			vpcIDs = append(vpcIDs, i.VpcID)
		}
	}
	if len(vpcIDs) == 0 {
		return
	}
	sort.Strings(vpcIDs)
	var mu sync.Mutex
	fail := func(vpcs []string, what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range vpcs {
			if v := f.VPCs[id]; v.Err == nil {
				v.Err = fmt.Errorf("ec2 %s: %w", what, err)
			}
		}
	}
	for _, chunk := range chunks(vpcIDs, 100) {
		vpcFilter := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: chunk}}
		r.Go(func(ctx context.Context) {
			out, err := g.Clients.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: chunk})
			if err != nil {
				fail(chunk, "DescribeVpcs", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range out.Vpcs {
				if vpc := f.VPCs[aws.ToString(v.VpcId)]; vpc != nil {
					vpc.CIDR = aws.ToString(v.CidrBlock)
				}
			}
		})
		pages := func(op string, drain func(context.Context) error) {
			r.Go(func(ctx context.Context) {
				if err := drain(ctx); err != nil {
					fail(chunk, op, err)
				}
			})
		}
		pages("DescribeSubnets", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeSubnetsPaginator(g.Clients.EC2, &ec2.DescribeSubnetsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeSubnetsOutput) {
					for _, s := range out.Subnets {
						if vpc := f.VPCs[aws.ToString(s.VpcId)]; vpc != nil {
							vpc.Subnets[aws.ToString(s.SubnetId)] = Subnet{ID: aws.ToString(s.SubnetId), CIDR: aws.ToString(s.CidrBlock), AvailabilityZone: aws.ToString(s.AvailabilityZone)}
						}
					}
				})
		})
		pages("DescribeRouteTables", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeRouteTablesPaginator(g.Clients.EC2, &ec2.DescribeRouteTablesInput{Filters: vpcFilter, MaxResults: aws.Int32(100)}), &mu,
				func(out *ec2.DescribeRouteTablesOutput) {
					for _, rt := range out.RouteTables {
						if vpc := f.VPCs[aws.ToString(rt.VpcId)]; vpc != nil {
							vpc.RouteTables = append(vpc.RouteTables, convertRouteTable(rt))
						}
					}
				})
		})
		pages("DescribeVpcEndpoints", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeVpcEndpointsPaginator(g.Clients.EC2, &ec2.DescribeVpcEndpointsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeVpcEndpointsOutput) {
					for _, e := range out.VpcEndpoints {
						if vpc := f.VPCs[aws.ToString(e.VpcId)]; vpc != nil {
							vpc.Endpoints = append(vpc.Endpoints, convertEndpoint(e))
						}
					}
				})
		})
		pages("DescribeSecurityGroups", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeSecurityGroupsPaginator(g.Clients.EC2, &ec2.DescribeSecurityGroupsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeSecurityGroupsOutput) {
					for _, sg := range out.SecurityGroups {
						if vpc := f.VPCs[aws.ToString(sg.VpcId)]; vpc != nil {
							vpc.SecurityGroups[aws.ToString(sg.GroupId)] = SecurityGroup{ID: aws.ToString(sg.GroupId),
								Ingress: convertPerms(sg.IpPermissions), Egress: convertPerms(sg.IpPermissionsEgress)}
						}
					}
				})
		})
		pages("DescribeNatGateways", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeNatGatewaysPaginator(g.Clients.EC2, &ec2.DescribeNatGatewaysInput{Filter: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeNatGatewaysOutput) {
					for _, n := range out.NatGateways {
						if vpc := f.VPCs[aws.ToString(n.VpcId)]; vpc != nil {
							vpc.NATGateways[aws.ToString(n.NatGatewayId)] = NATGateway{ID: aws.ToString(n.NatGatewayId), SubnetID: aws.ToString(n.SubnetId), State: string(n.State)}
						}
					}
				})
		})
		pages("DescribeInternetGateways", func(ctx context.Context) error {
			igwFilter := []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: chunk}}
			return eachPage(ctx, ec2.NewDescribeInternetGatewaysPaginator(g.Clients.EC2, &ec2.DescribeInternetGatewaysInput{Filters: igwFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeInternetGatewaysOutput) {
					for _, igw := range out.InternetGateways {
						for _, a := range igw.Attachments {
							if vpc := f.VPCs[aws.ToString(a.VpcId)]; vpc != nil {
								vpc.InternetGateways = append(vpc.InternetGateways, aws.ToString(igw.InternetGatewayId))
							}
						}
					}
				})
		})
		pages("DescribeNetworkAcls", func(ctx context.Context) error {
			return eachPage(ctx, ec2.NewDescribeNetworkAclsPaginator(g.Clients.EC2, &ec2.DescribeNetworkAclsInput{Filters: vpcFilter, MaxResults: aws.Int32(1000)}), &mu,
				func(out *ec2.DescribeNetworkAclsOutput) {
					for _, a := range out.NetworkAcls {
						if vpc := f.VPCs[aws.ToString(a.VpcId)]; vpc != nil {
							vpc.NACLs = append(vpc.NACLs, convertNACL(a))
						}
					}
				})
		})
	}
	if g.Clients.Route53 != nil {
		for _, id := range vpcIDs {
			r.Go(func(ctx context.Context) {
				zones, err := g.vpcZones(ctx, id)
				mu.Lock()
				defer mu.Unlock()
				f.VPCs[id].Zones, f.VPCs[id].ZonesErr = zones, err
			})
		}
	}
	for _, id := range vpcIDs {
		for _, attr := range []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames} {
			r.Go(func(ctx context.Context) {
				out, err := g.Clients.EC2.DescribeVpcAttribute(ctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(id), Attribute: attr})
				if err != nil {
					fail([]string{id}, "DescribeVpcAttribute", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if out.EnableDnsSupport != nil {
					f.VPCs[id].DNSSupport = out.EnableDnsSupport.Value
				}
				if out.EnableDnsHostnames != nil {
					f.VPCs[id].DNSHostnames = out.EnableDnsHostnames.Value
				}
			})
		}
	}
}

// pager is an aws-sdk-go-v2 EC2 paginator.
type pager[T any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*ec2.Options)) (T, error)
}

// eachPage hands every page of p to add, under mu, and stops at the first
// error.
func eachPage[T any](ctx context.Context, p pager[T], mu *sync.Mutex, add func(T)) error {
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		add(out)
		mu.Unlock()
	}
	return nil
}

func convertRouteTable(rt ec2types.RouteTable) RouteTable {
	out := RouteTable{ID: aws.ToString(rt.RouteTableId)}
	for _, a := range rt.Associations {
		if aws.ToBool(a.Main) {
			out.Main = true
		}
		if a.SubnetId != nil {
			out.SubnetIDs = append(out.SubnetIDs, aws.ToString(a.SubnetId))
		}
	}
	for _, r := range rt.Routes {
		target := ""
		for _, t := range []*string{r.GatewayId, r.NatGatewayId, r.TransitGatewayId, r.NetworkInterfaceId,
			r.VpcPeeringConnectionId, r.InstanceId, r.EgressOnlyInternetGatewayId, r.LocalGatewayId, r.CoreNetworkArn} {
			if aws.ToString(t) != "" {
				target = aws.ToString(t)
				break
			}
		}
		out.Routes = append(out.Routes, Route{Destination: aws.ToString(r.DestinationCidrBlock), Target: target, State: string(r.State)})
	}
	return out
}

func convertEndpoint(e ec2types.VpcEndpoint) Endpoint {
	name := aws.ToString(e.ServiceName)
	short := name[strings.LastIndex(name, ".")+1:]
	out := Endpoint{ID: aws.ToString(e.VpcEndpointId), Service: short, Type: string(e.VpcEndpointType),
		State: strings.ToLower(string(e.State)), PrivateDNS: aws.ToBool(e.PrivateDnsEnabled),
		SubnetIDs: e.SubnetIds, Policy: aws.ToString(e.PolicyDocument), RouteTableIDs: e.RouteTableIds}
	for _, gr := range e.Groups {
		out.SecurityGroups = append(out.SecurityGroups, aws.ToString(gr.GroupId))
	}
	return out
}

func convertPerms(perms []ec2types.IpPermission) []SGRule {
	var out []SGRule
	for _, p := range perms {
		r := SGRule{Protocol: aws.ToString(p.IpProtocol), From: aws.ToInt32(p.FromPort), To: aws.ToInt32(p.ToPort)}
		for _, c := range p.IpRanges {
			r.CIDRs = append(r.CIDRs, aws.ToString(c.CidrIp))
		}
		for _, gp := range p.UserIdGroupPairs {
			r.Groups = append(r.Groups, aws.ToString(gp.GroupId))
		}
		for _, pl := range p.PrefixListIds {
			r.PrefixLists = append(r.PrefixLists, aws.ToString(pl.PrefixListId))
		}
		out = append(out, r)
	}
	return out
}

func convertNACL(a ec2types.NetworkAcl) NACL {
	out := NACL{ID: aws.ToString(a.NetworkAclId), Default: aws.ToBool(a.IsDefault)}
	for _, as := range a.Associations {
		out.SubnetIDs = append(out.SubnetIDs, aws.ToString(as.SubnetId))
	}
	for _, e := range a.Entries {
		ne := NACLEntry{Number: aws.ToInt32(e.RuleNumber), Egress: aws.ToBool(e.Egress), Protocol: aws.ToString(e.Protocol),
			CIDR: aws.ToString(e.CidrBlock), Allow: e.RuleAction == ec2types.RuleActionAllow}
		if e.PortRange != nil {
			ne.From, ne.To = aws.ToInt32(e.PortRange.From), aws.ToInt32(e.PortRange.To)
		}
		out.Entries = append(out.Entries, ne)
	}
	return out
}

// serviceNames are the services whose endpoints the checks follow: the
// agent's three, and the three logging and encryption may need.
var serviceNames = []string{"ssm", "ssmmessages", "ec2messages", "s3", "logs", "kms"}

// serviceHost is the regional DNS name of an AWS service.
func serviceHost(svc, region string) string {
	suffix := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return svc + "." + region + "." + suffix
}

// zoneCovers reports whether a zone named zone answers for host.
func zoneCovers(zone, host string) bool {
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	return host == zone || strings.HasSuffix(host, "."+zone)
}

// vpcZones lists the private hosted zones associated with a VPC that cover
// a service name.
func (g *Gatherer) vpcZones(ctx context.Context, vpcID string) ([]HostedZone, error) {
	var zones []HostedZone
	in := &route53.ListHostedZonesByVPCInput{VPCId: aws.String(vpcID), VPCRegion: r53types.VPCRegion(g.Region)}
	for {
		out, err := g.Clients.Route53.ListHostedZonesByVPC(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("route53 ListHostedZonesByVPC %s: %w", vpcID, err)
		}
		for _, z := range out.HostedZoneSummaries {
			for _, svc := range serviceNames {
				if zoneCovers(aws.ToString(z.Name), serviceHost(svc, g.Region)) {
					zones = append(zones, HostedZone{ID: aws.ToString(z.HostedZoneId), Name: strings.TrimSuffix(aws.ToString(z.Name), ".")})
					break
				}
			}
		}
		if out.NextToken == nil {
			return zones, nil
		}
		in.NextToken = out.NextToken
	}
}

// vpceIDRE finds the endpoint ID at the start of an endpoint DNS name
// (vpce-0123456789abcdef0-abcdefgh.ssm.us-east-1.vpce.amazonaws.com).
var vpceIDRE = regexp.MustCompile(`(?i)^\*?\.?(vpce-[0-9a-f]+)-`)

// zoneRecords reads the records of each zone found in phase 2 (once per
// zone, however many VPCs share it) and keeps the alias or CNAME records
// of service names.
func (g *Gatherer) zoneRecords(p *phase, f *Facts) {
	byID := map[string][]*HostedZone{}
	for _, vpc := range f.VPCs {
		for i := range vpc.Zones {
			z := &vpc.Zones[i]
			byID[z.ID] = append(byID[z.ID], z)
		}
	}
	for id, zs := range byID {
		p.Go(func(ctx context.Context) {
			aliases, err := g.records(ctx, id)
			p.locked(func() {
				for _, z := range zs {
					z.Aliases, z.Err = aliases, err
				}
				for _, vpce := range aliases {
					if vpce != "" && f.RemoteEndpoints[vpce] == nil {
						f.RemoteEndpoints[vpce] = &RemoteEndpoint{Endpoint: Endpoint{ID: vpce}}
					}
				}
			})
		})
	}
}

func (g *Gatherer) records(ctx context.Context, zoneID string) (map[string]string, error) {
	aliases := map[string]string{}
	pg := route53.NewListResourceRecordSetsPaginator(g.Clients.Route53, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zoneID)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("route53 ListResourceRecordSets %s: %w", zoneID, err)
		}
		for _, rr := range out.ResourceRecordSets {
			name := strings.ToLower(strings.TrimSuffix(aws.ToString(rr.Name), "."))
			var target string
			switch {
			case rr.AliasTarget != nil:
				target = aws.ToString(rr.AliasTarget.DNSName)
			case rr.Type == r53types.RRTypeCname && len(rr.ResourceRecords) > 0:
				target = aws.ToString(rr.ResourceRecords[0].Value)
			case rr.Type == r53types.RRTypeA:
				// An A record with addresses: not an endpoint we can follow.
				aliases[name] = ""
				continue
			default:
				continue
			}
			vpce := ""
			if m := vpceIDRE.FindStringSubmatch(target); m != nil {
				vpce = strings.ToLower(m[1])
			}
			aliases[name] = vpce
		}
	}
	return aliases, nil
}

// remoteEndpoints describes the endpoints private hosted zones point at
// that are not in a VPC of the targets (those are known already).
func (g *Gatherer) remoteEndpoints(p *phase, f *Facts) {
	local := map[string]bool{}
	for _, vpc := range f.VPCs {
		for _, e := range vpc.Endpoints {
			local[e.ID] = true
		}
	}
	var ids []string
	for id := range f.RemoteEndpoints {
		if local[id] {
			delete(f.RemoteEndpoints, id)
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, chunk := range chunks(ids, 100) {
		p.Go(func(ctx context.Context) {
			out, err := g.Clients.EC2.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: chunk})
			p.locked(func() {
				if err != nil {
					for _, id := range chunk {
						f.RemoteEndpoints[id].Err = fmt.Errorf("ec2 DescribeVpcEndpoints %s: %w", id, err)
					}
					return
				}
				for _, e := range out.VpcEndpoints {
					if re := f.RemoteEndpoints[aws.ToString(e.VpcEndpointId)]; re != nil {
						re.Endpoint, re.VpcID, re.Groups = convertEndpoint(e), aws.ToString(e.VpcId), map[string]SecurityGroup{}
					}
				}
			})
		})
	}
}

// remoteNetworks reads the subnets and security groups of the remote
// endpoints.
func (g *Gatherer) remoteNetworks(p *phase, f *Facts) {
	var subnets, groups []string
	for _, re := range f.RemoteEndpoints {
		if re.Err == nil && re.VpcID != "" {
			subnets = append(subnets, re.SubnetIDs...)
			groups = append(groups, re.SecurityGroups...)
		}
	}
	if len(subnets) == 0 {
		return
	}
	sort.Strings(subnets)
	sort.Strings(groups)
	fail := func(err error) {
		for _, re := range f.RemoteEndpoints {
			if re.Err == nil {
				re.Err = err
			}
		}
	}
	p.Go(func(ctx context.Context) {
		out, err := g.Clients.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: uniq(subnets)})
		p.locked(func() {
			if err != nil {
				fail(fmt.Errorf("ec2 DescribeSubnets: %w", err))
				return
			}
			cidrs := map[string]string{}
			for _, s := range out.Subnets {
				cidrs[aws.ToString(s.SubnetId)] = aws.ToString(s.CidrBlock)
			}
			for _, re := range f.RemoteEndpoints {
				for _, id := range re.SubnetIDs {
					if c := cidrs[id]; c != "" {
						re.SubnetCIDRs = append(re.SubnetCIDRs, c)
					}
				}
			}
		})
	})
	if len(groups) == 0 {
		return
	}
	p.Go(func(ctx context.Context) {
		out, err := g.Clients.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: uniq(groups)})
		p.locked(func() {
			if err != nil {
				fail(fmt.Errorf("ec2 DescribeSecurityGroups: %w", err))
				return
			}
			for _, sg := range out.SecurityGroups {
				g := SecurityGroup{ID: aws.ToString(sg.GroupId), Ingress: convertPerms(sg.IpPermissions), Egress: convertPerms(sg.IpPermissionsEgress)}
				for _, re := range f.RemoteEndpoints {
					if contains(re.SecurityGroups, g.ID) {
						re.Groups[g.ID] = g
					}
				}
			}
		})
	})
}
