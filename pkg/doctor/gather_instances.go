package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	nodetarget "github.com/ssmkit/ssmkit/pkg/target"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// notTerminated are the EC2 states the doctor checks (a stopped instance
// is found, and instance.running says so).
var notTerminated = []string{"pending", "running", "stopping", "stopped", "shutting-down"}

// instances resolves the selection: targets are classified by package
// target (IDs, ARNs, names, tags, addresses, DNS names, patterns); IDs are
// described in batches, anything else is looked up in EC2 and among the
// hybrid nodes first. Tag filters and --all list EC2 instances and hybrid
// nodes.
func (g *Gatherer) instances(ctx context.Context, sel Selection, f *Facts) error {
	var ids, managedIDs []string
	resolver := nodetarget.Resolver{EC2: g.Clients.EC2, SSM: g.Clients.SSM, States: notTerminated}
	for _, t := range sel.Targets {
		sp, err := nodetarget.Parse(t)
		if err != nil {
			return err
		}
		if sp.ID == "" {
			nodes, err := resolver.Find(ctx, sp)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				f.Missing[t] = shortErr(err)
			case len(nodes) == 0:
				f.Missing[t] = fmt.Sprintf("no instance or managed node matches the %s %q in %s", sp.Kind, t, g.Region)
			}
			for _, n := range nodes {
				if nodetarget.IsManagedNodeID(n.ID) {
					managedIDs = append(managedIDs, n.ID)
				} else {
					ids = append(ids, n.ID)
				}
			}
			continue
		}
		if nodetarget.IsManagedNodeID(sp.ID) {
			managedIDs = append(managedIDs, sp.ID)
		} else {
			ids = append(ids, sp.ID)
		}
	}
	var tagFilters []ec2types.Filter
	for k, v := range sel.Tags {
		tagFilters = append(tagFilters, ec2types.Filter{Name: aws.String("tag:" + k), Values: v})
	}
	sort.Slice(tagFilters, func(i, j int) bool { return *tagFilters[i].Name < *tagFilters[j].Name })
	stateFilter := ec2types.Filter{Name: aws.String("instance-state-name"), Values: notTerminated}
	var queries [][]ec2types.Filter
	for _, chunk := range chunks(uniq(ids), 200) {
		queries = append(queries, append([]ec2types.Filter{{Name: aws.String("instance-id"), Values: chunk}}, tagFilters...))
	}
	if len(sel.Targets) == 0 && (sel.All || len(tagFilters) > 0) {
		queries = append(queries, append([]ec2types.Filter{stateFilter}, tagFilters...))
	}
	for _, q := range queries {
		p := ec2.NewDescribeInstancesPaginator(g.Clients.EC2, &ec2.DescribeInstancesInput{Filters: q, MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describing instances: %w", err)
			}
			for _, res := range out.Reservations {
				for _, i := range res.Instances {
					inst := convertInstance(i)
					f.Instances[inst.ID] = inst
				}
			}
		}
	}
	for _, id := range ids {
		if _, ok := f.Instances[id]; !ok && nodetarget.IsInstanceID(id) {
			f.Missing[id] = "no EC2 instance with this ID in " + g.Region
		}
	}
	if len(sel.Targets) == 0 && (sel.All || len(sel.Tags) > 0) {
		// A fleet includes its hybrid nodes.
		hybrid, err := g.hybridNodes(ctx, sel.Tags)
		if err != nil {
			return err
		}
		managedIDs = append(managedIDs, hybrid...)
	}
	for _, id := range uniq(managedIDs) {
		// Hybrid nodes are not in EC2; DescribeInstanceInformation decides.
		f.Instances[id] = &Instance{ID: id, State: "hybrid"}
	}
	return nil
}

// hybridNodes lists the IDs of the hybrid managed nodes with the tags.
func (g *Gatherer) hybridNodes(ctx context.Context, tags map[string][]string) ([]string, error) {
	filters := []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("ResourceType"), Values: []string{"ManagedInstance"}}}
	for k, v := range tags {
		filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String("tag:" + k), Values: v})
	}
	var ids []string
	p := ssm.NewDescribeInstanceInformationPaginator(g.Clients.SSM, &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(50)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing hybrid managed nodes: %w", err)
		}
		for _, ii := range out.InstanceInformationList {
			ids = append(ids, aws.ToString(ii.InstanceId))
		}
	}
	return ids, nil
}

func convertInstance(i ec2types.Instance) *Instance {
	inst := &Instance{ID: aws.ToString(i.InstanceId), VpcID: aws.ToString(i.VpcId), SubnetID: aws.ToString(i.SubnetId),
		PrivateIP: aws.ToString(i.PrivateIpAddress), PublicIP: aws.ToString(i.PublicIpAddress)}
	if i.State != nil {
		inst.State = string(i.State.Name)
	}
	if i.Placement != nil {
		inst.AvailabilityZone = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.IamInstanceProfile != nil {
		inst.ProfileARN = aws.ToString(i.IamInstanceProfile.Arn)
	}
	if i.MetadataOptions != nil {
		inst.HTTPTokens = string(i.MetadataOptions.HttpTokens)
	}
	// The primary interface's groups are the instance's; some emulators
	// report them only on the interfaces, so take the union.
	for _, sg := range i.SecurityGroups {
		inst.SecurityGroups = append(inst.SecurityGroups, aws.ToString(sg.GroupId))
	}
	for _, ni := range i.NetworkInterfaces {
		for _, sg := range ni.Groups {
			if id := aws.ToString(sg.GroupId); !contains(inst.SecurityGroups, id) {
				inst.SecurityGroups = append(inst.SecurityGroups, id)
			}
		}
	}
	inst.Tags = map[string]string{}
	for _, t := range i.Tags {
		inst.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	inst.Name = inst.Tags["Name"]
	return inst
}

// managed lists DescribeInstanceInformation for the targets, 50 IDs a
// page, and reads the role each hybrid node registered with (its
// activation's role) once.
func (g *Gatherer) managed(p *phase, f *Facts) {
	ids := make([]string, 0, len(f.Instances))
	for id := range f.Instances {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, chunk := range chunks(ids, 50) {
		p.Go(func(ctx context.Context) {
			pg := ssm.NewDescribeInstanceInformationPaginator(g.Clients.SSM, &ssm.DescribeInstanceInformationInput{
				Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}}, MaxResults: aws.Int32(50)})
			var hybridRoles []string
			for pg.HasMorePages() {
				out, err := pg.NextPage(ctx)
				if err != nil {
					p.locked(func() { f.ManagedErr = fmt.Errorf("ssm DescribeInstanceInformation: %w", err) })
					return
				}
				p.locked(func() {
					for _, ii := range out.InstanceInformationList {
						m := &Managed{PingStatus: string(ii.PingStatus), AgentVersion: aws.ToString(ii.AgentVersion),
							PlatformType: string(ii.PlatformType), PlatformName: aws.ToString(ii.PlatformName),
							ResourceType: string(ii.ResourceType), IAMRole: aws.ToString(ii.IamRole),
							IPAddress: aws.ToString(ii.IPAddress), ComputerName: aws.ToString(ii.ComputerName)}
						if ii.LastPingDateTime != nil {
							m.LastPing = *ii.LastPingDateTime
						}
						id := aws.ToString(ii.InstanceId)
						f.Managed[id] = m
						if strings.HasPrefix(id, "mi-") && m.IAMRole != "" {
							hybridRoles = append(hybridRoles, roleName(m.IAMRole))
						}
					}
				})
			}
			for _, name := range uniq(hybridRoles) {
				claimed := false
				p.locked(func() {
					if f.Roles[name] == nil {
						f.Roles[name], claimed = &Role{Name: name}, true
					}
				})
				if !claimed {
					continue
				}
				out, err := g.Clients.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
				p.locked(func() {
					if err != nil {
						f.Roles[name].Err = fmt.Errorf("iam GetRole %s: %w", name, err)
						return
					}
					*f.Roles[name] = *newRole(name, aws.ToString(out.Role.Arn), aws.ToString(out.Role.AssumeRolePolicyDocument))
				})
			}
		})
	}
}
