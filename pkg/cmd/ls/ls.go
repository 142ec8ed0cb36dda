// Package ls implements `ssmkit ls`: the managed nodes Session Manager can
// reach, with their EC2 names and the flags that matter for sessions.
package ls

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/target"
)

// Flags shown in the FLAGS column.
const (
	// FlagOldAgent: the agent predates port forwarding
	// (version.PortForwarding).
	FlagOldAgent = "old-agent:no-port-forwarding"
	// FlagNoMux: the agent forwards ports one connection at a time
	// (older than version.Multiplexing).
	FlagNoMux = "old-agent:no-multiplexing"
	// FlagOffline: the agent is not connected (PingStatus other than Online).
	FlagOffline = "offline"
	// FlagEC2StatePrefix starts the flag of an EC2 instance that is not
	// running, followed by its state: ec2:stopped, ec2:terminated…
	FlagEC2StatePrefix = "ec2:"
)

// gone reports whether an EC2 instance state means the instance can never
// be reached again. Systems Manager deregisters such instances a while
// after they end; until then DescribeInstanceInformation still lists them
// (ConnectionLost), and ls leaves them out unless --all.
func gone(ec2State string) bool {
	switch ec2types.InstanceStateName(ec2State) {
	case ec2types.InstanceStateNameTerminated, ec2types.InstanceStateNameShuttingDown:
		return true
	}
	return false
}

// Clients are the AWS APIs `ls` uses.
type Clients struct {
	SSM target.SSMAPI
	// EC2 finds Name tags; nil leaves EC2 names out.
	EC2 target.EC2API
}

// LsOptions are the inputs of `ssmkit ls`.
type LsOptions struct {
	IO      *iostreams.IOStreams
	Clients func(ctx context.Context) (Clients, error)
	// Filters are the parsed --filter values, as SSM instance filters.
	Filters []ssmtypes.InstanceInformationStringFilter
	// JSON is --json or --output json.
	JSON bool
	// All is --all: also the nodes whose EC2 instance is terminated or
	// shutting down.
	All bool
}

// filterKeys maps --filter keys to DescribeInstanceInformation filter keys.
func filterKeys() map[string]string {
	return map[string]string{
		"ping":          "PingStatus",
		"platform":      "PlatformTypes",
		"agent":         "AgentVersion",
		"id":            "InstanceIds",
		"resource-type": "ResourceType",
		"role":          "IamRole",
	}
}

// ParseFilter parses one --filter: tag:KEY=VALUE, ping=Online, platform=Linux,
// agent=VERSION, id=ID, resource-type=ManagedInstance or role=NAME. Several
// values are separated by commas.
func ParseFilter(s string) (ssmtypes.InstanceInformationStringFilter, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return ssmtypes.InstanceInformationStringFilter{}, fmt.Errorf("filter %q is not KEY=VALUE (e.g. ping=Online or tag:team=web)", s)
	}
	values := strings.Split(v, ",")
	for _, x := range values {
		if x == "" {
			return ssmtypes.InstanceInformationStringFilter{}, fmt.Errorf("filter %q has an empty value", s)
		}
	}
	if tag, ok := strings.CutPrefix(k, "tag:"); ok {
		if tag == "" {
			return ssmtypes.InstanceInformationStringFilter{}, fmt.Errorf("filter %q names no tag key", s)
		}
		return ssmtypes.InstanceInformationStringFilter{Key: aws.String(k), Values: values}, nil
	}
	key, ok := filterKeys()[strings.ToLower(k)]
	if !ok {
		return ssmtypes.InstanceInformationStringFilter{}, fmt.Errorf("unknown filter key %q: use tag:KEY, ping, platform, agent, id, resource-type or role", k)
	}
	return ssmtypes.InstanceInformationStringFilter{Key: aws.String(key), Values: values}, nil
}

// NewCmdLs returns the `ls` command. runF replaces the run function in tests.
func NewCmdLs(f *cmdutil.Factory, runF func(*LsOptions) error) *cobra.Command {
	opts := &LsOptions{IO: f.IOStreams}
	var filters []string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List managed nodes with their names, agent versions and flags",
		Long: "List the nodes Systems Manager manages in this account and region, with their EC2 Name\n" +
			"tag, ping status, SSM Agent version, platform and IP address. FLAGS points out what\n" +
			"stops a session: offline (agent not connected), ec2:<state> (the EC2 instance is not\n" +
			"running), " + FlagOldAgent + " (agent older than " + version.PortForwarding.MinAgent + ") and\n" +
			FlagNoMux + " (older than " + version.Multiplexing.MinAgent + ": port forwarding and SSH carry one\n" +
			"connection at a time).\n" +
			"Instances EC2 reports terminated or shutting-down are left out (--all lists them):\n" +
			"they can never be reached, and Systems Manager deregisters them a while after.\n\n" +
			"Calls: one DescribeInstanceInformation per 50 nodes and one DescribeInstances per\n" +
			"1000 EC2 instances for the names.",
		Example: "  ssmkit ls\n" +
			"  ssmkit ls --filter ping=Online --filter tag:team=web\n" +
			"  ssmkit ls --filter platform=Windows --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Filters = nil
			for _, s := range filters {
				fl, err := ParseFilter(s)
				if err != nil {
					return cmdutil.FlagErrorWrap(err)
				}
				opts.Filters = append(opts.Filters, fl)
			}
			if f.Options.JSON() {
				opts.JSON = true
			}
			if opts.Clients == nil {
				opts.Clients = func(ctx context.Context) (Clients, error) {
					cfg, err := f.AWSConfig(ctx)
					if err != nil {
						return Clients{}, err
					}
					return Clients{SSM: awsapi.NewSSM(cfg), EC2: awsapi.NewEC2(cfg)}, nil
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return lsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Only nodes matching `KEY=VALUE`: tag:KEY, ping, platform, agent, id, resource-type, role (repeatable)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print JSON")
	cmd.Flags().BoolVar(&opts.All, "all", false, "Also list nodes whose EC2 instance is terminated or shutting down")
	return cmd
}

// Node is one managed node, as --json prints it.
type Node struct {
	Name            string     `json:"name"`
	ID              string     `json:"id"`
	PingStatus      string     `json:"ping_status"`
	AgentVersion    string     `json:"agent_version"`
	PlatformType    string     `json:"platform_type,omitempty"`
	PlatformName    string     `json:"platform_name,omitempty"`
	PlatformVersion string     `json:"platform_version,omitempty"`
	IPAddress       string     `json:"ip_address,omitempty"`
	ResourceType    string     `json:"resource_type,omitempty"`
	LastPing        *time.Time `json:"last_ping,omitempty"`
	EC2State        string     `json:"ec2_state,omitempty"`
	Flags           []string   `json:"flags"`
}

// List returns the managed nodes matching filters, named from EC2, in the
// order target.ListNodes gives them.
func List(ctx context.Context, c Clients, filters []ssmtypes.InstanceInformationStringFilter) ([]Node, error) {
	tn, err := target.ListNodes(ctx, c.SSM, c.EC2, filters)
	if err != nil {
		return nil, err
	}
	nodes := make([]Node, 0, len(tn))
	for _, n := range tn {
		nodes = append(nodes, node(n))
	}
	return nodes, nil
}

func node(tn target.Node) Node {
	n := Node{
		Name: tn.Name, ID: tn.ID, PingStatus: tn.PingStatus,
		AgentVersion: tn.AgentVersion, PlatformType: tn.PlatformType,
		PlatformName: tn.PlatformName, PlatformVersion: tn.PlatformVersion,
		IPAddress: tn.IPAddress, ResourceType: tn.ResourceType, LastPing: tn.LastPing,
		EC2State: tn.EC2State, Flags: []string{},
	}
	if n.PingStatus != string(ssmtypes.PingStatusOnline) {
		n.Flags = append(n.Flags, FlagOffline)
	}
	if n.EC2State != "" && n.EC2State != string(ec2types.InstanceStateNameRunning) {
		n.Flags = append(n.Flags, FlagEC2StatePrefix+n.EC2State)
	}
	switch {
	case n.AgentVersion == "":
	case !version.PortForwarding.SupportedBy(n.AgentVersion):
		n.Flags = append(n.Flags, FlagOldAgent)
	case !version.Multiplexing.SupportedBy(n.AgentVersion):
		n.Flags = append(n.Flags, FlagNoMux)
	}
	return n
}

func lsRun(ctx context.Context, opts *LsOptions) error {
	c, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	listed, err := List(ctx, c, opts.Filters)
	if err != nil {
		return err
	}
	nodes, hidden := listed[:0:0], 0
	for _, n := range listed {
		if gone(n.EC2State) && !opts.All {
			hidden++
			continue
		}
		nodes = append(nodes, n)
	}
	if hidden > 0 && !opts.JSON {
		what := "instances"
		if hidden == 1 {
			what = "instance"
		}
		defer fmt.Fprintf(opts.IO.ErrOut, "%d terminated %s not shown (--all shows them)\n", hidden, what)
	}
	if opts.JSON {
		if nodes == nil {
			nodes = []Node{}
		}
		return cmdutil.PrintJSON(opts.IO, nodes)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "No managed nodes match")
		return nil
	}
	cs := opts.IO.ColorScheme()
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.SetHeader("NAME", "ID", "PING", "AGENT", "PLATFORM", "IP", "FLAGS")
	for _, n := range nodes {
		ping := n.PingStatus
		if ping == string(ssmtypes.PingStatusOnline) {
			ping = cs.Green(ping)
		} else {
			ping = cs.Red(ping)
		}
		platform := strings.TrimSpace(n.PlatformName + " " + n.PlatformVersion)
		if platform == "" {
			platform = n.PlatformType
		}
		flags := strings.Join(n.Flags, ",")
		if flags != "" {
			flags = cs.Yellow(flags)
		}
		tp.AddRow(dash(n.Name), n.ID, ping, dash(n.AgentVersion), dash(platform), dash(n.IPAddress), dash(flags))
	}
	return tp.Render()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
