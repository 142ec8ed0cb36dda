package target

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/sync/errgroup"
)

// Resolver finds the nodes a target string names. EC2 finds instances by
// Name tag, tag, private IP and private DNS name; SSM finds hybrid managed
// nodes by name, computer name, IP and tag. Either may be nil: IDs and
// ARNs resolve without any call.
type Resolver struct {
	EC2 EC2API
	SSM SSMAPI
	// Logf, when set, receives debug lines (a lookup that failed while the
	// other one answered).
	Logf func(format string, args ...any)
	// States are the EC2 instance states a name, tag, address or pattern
	// matches; nil means running only (what a session can reach). The
	// doctor also looks at stopped instances, to say so.
	States []string
}

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	// PickOne accepts the single node a pattern matches (--pick-one).
	// Without it a pattern is never used silently.
	PickOne bool
}

// maxListed bounds the candidates an error message lists.
const maxListed = 8

// Resolve returns the one node s names. IDs and ARNs are taken as they are
// (StartSession checks them); anything else is looked up. It fails with
// ErrInvalid, ErrNotFound or ErrAmbiguous, in a message that lists the
// candidates.
func (r Resolver) Resolve(ctx context.Context, s string, o ResolveOptions) (Node, error) {
	sp, err := Parse(s)
	if err != nil {
		return Node{}, err
	}
	if sp.ID != "" {
		return Node{ID: sp.ID}, nil
	}
	nodes, err := r.Find(ctx, sp)
	if err != nil {
		return Node{}, err
	}
	switch {
	case len(nodes) == 0:
		return Node{}, errorf(ErrNotFound, "no running instance or managed node matches the %s %q; run 'ssmkit ls' to see the nodes in this account and region", sp.Kind, s)
	case len(nodes) > 1:
		return Node{}, errorf(ErrAmbiguous, "the %s %q matches %d nodes: %s; give one ID instead", sp.Kind, s, len(nodes), labels(nodes))
	case sp.Wildcard() && !o.PickOne:
		return Node{}, errorf(ErrAmbiguous, "the %s %q matches one node, %s; pass --pick-one to use it, or give its name or ID", sp.Kind, s, nodes[0].Label())
	}
	return nodes[0], nil
}

func labels(nodes []Node) string {
	var b strings.Builder
	for i, n := range nodes {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(nodes)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n.Label())
	}
	return b.String()
}

// Find returns every node sp matches, sorted by name and ID: running EC2
// instances from one DescribeInstances query and hybrid nodes from the
// managed-node listing, asked in parallel. When one lookup fails and the
// other finds nodes, the failure is logged and the nodes returned.
func (r Resolver) Find(ctx context.Context, sp Spec) ([]Node, error) {
	if sp.ID != "" {
		return []Node{{ID: sp.ID}}, nil
	}
	var (
		fromEC2, fromSSM []Node
		errEC2, errSSM   error
	)
	g, gctx := errgroup.WithContext(ctx)
	if in := ec2Query(sp, r.States); in != nil && r.EC2 != nil {
		g.Go(func() error {
			insts, err := describeInstances(gctx, r.EC2, in)
			for _, inst := range insts {
				fromEC2 = append(fromEC2, nodeFromInstance(inst))
			}
			errEC2 = err
			return nil
		})
	}
	if filters, match := ssmQuery(sp); match != nil && r.SSM != nil {
		g.Go(func() error {
			all, err := managedNodes(gctx, r.SSM, filters)
			for _, n := range all {
				if match(n) {
					fromSSM = append(fromSSM, n)
				}
			}
			errSSM = err
			return nil
		})
	}
	_ = g.Wait()
	seen := map[string]bool{}
	var nodes []Node
	for _, n := range append(fromEC2, fromSSM...) {
		if !seen[n.ID] {
			seen[n.ID] = true
			nodes = append(nodes, n)
		}
	}
	for _, err := range []error{errEC2, errSSM} {
		if err == nil {
			continue
		}
		if len(nodes) == 0 {
			return nil, fmt.Errorf("looking up the %s %q: %w", sp.Kind, sp.Input, err)
		}
		r.logf("looking up the %s %q: %v", sp.Kind, sp.Input, err)
	}
	sortNodes(nodes)
	return nodes, nil
}

func (r Resolver) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// ec2Query is the DescribeInstances request for sp over instances in
// states (running when nil), or nil when EC2 cannot answer it.
func ec2Query(sp Spec, states []string) *ec2.DescribeInstancesInput {
	if states == nil {
		states = []string{"running"}
	}
	filter := func(name string, value string) []ec2types.Filter {
		return []ec2types.Filter{
			{Name: aws.String(name), Values: []string{value}},
			{Name: aws.String("instance-state-name"), Values: states},
		}
	}
	var fs []ec2types.Filter
	switch sp.Kind {
	case KindName:
		// EC2 filter values treat * and ? as wildcards and \ as their
		// escape; a name has none of the first two.
		fs = filter("tag:Name", strings.ReplaceAll(sp.Name, `\`, `\\`))
	case KindPattern:
		fs = filter("tag:Name", sp.Name)
	case KindTag:
		fs = filter("tag:"+sp.TagKey, sp.TagValue)
	case KindDNSName:
		fs = filter("private-dns-name", sp.Name)
	case KindIP:
		if sp.Addr.Is4() {
			fs = filter("private-ip-address", sp.Addr.String())
		} else {
			fs = filter("ipv6-address", sp.Addr.String())
		}
	default:
		return nil
	}
	return &ec2.DescribeInstancesInput{Filters: fs}
}

// ssmQuery returns the DescribeInstanceInformation filters that list the
// hybrid nodes sp could name, and the test each listed node must pass; a
// nil test means SSM cannot answer sp.
func ssmQuery(sp Spec) ([]ssmtypes.InstanceInformationStringFilter, func(Node) bool) {
	filters := []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("ResourceType"), Values: []string{ResourceTypeManagedInstance}},
	}
	switch sp.Kind {
	case KindName:
		want := strings.ToLower(sp.Name)
		return filters, func(n Node) bool {
			for _, have := range nodeNames(n) {
				if have == want {
					return true
				}
			}
			return false
		}
	case KindPattern:
		pattern := strings.ToLower(sp.Name)
		return filters, func(n Node) bool {
			for _, have := range nodeNames(n) {
				if ok, _ := path.Match(pattern, have); ok {
					return true
				}
			}
			return false
		}
	case KindIP:
		return filters, func(n Node) bool { return n.IPAddress == sp.Addr.String() }
	case KindTag:
		if hasWildcard(sp.TagValue) {
			return nil, nil // SSM tag filters take exact values only
		}
		filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String("tag:" + sp.TagKey), Values: []string{sp.TagValue}})
		return filters, func(Node) bool { return true }
	}
	return nil, nil
}

// nodeNames are the lowercased names a hybrid node answers to: its name,
// its computer name and that name's first label (web01 for
// web01.corp.example.com).
func nodeNames(n Node) []string {
	var names []string
	for _, s := range []string{n.Name, n.ComputerName} {
		if s == "" {
			continue
		}
		s = strings.ToLower(s)
		names = append(names, s)
		if host, _, ok := strings.Cut(s, "."); ok && host != "" {
			names = append(names, host)
		}
	}
	return names
}
