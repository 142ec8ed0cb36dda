package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// network describes every VPC of the targets with one call per resource
// type for all VPCs together, plus the two DNS attributes per VPC.
func (g *Gatherer) network(r *phase, f *Facts) {
	var vpcIDs []string
	for _, i := range f.Instances {
		if i.VpcID != "" && f.VPCs[i.VpcID] == nil {
			f.VPCs[i.VpcID] = &VPC{ID: i.VpcID, Subnets: map[string]Subnet{}, SecurityGroups: map[string]SecurityGroup{}}
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
		SubnetIDs: e.SubnetIds, Policy: aws.ToString(e.PolicyDocument)}
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
