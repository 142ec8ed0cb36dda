package doctor

import (
	"time"

	"github.com/ssmkit/ssmkit/pkg/prefs"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// Facts is everything the checks look at, gathered once for all targets
// (see Gatherer). Checks never call AWS: tests build Facts by hand.
//
// A fact that could not be gathered carries the error in its Err field (or
// is absent from its map with an entry in the matching *Err field); the
// checks that need it are then skipped with that reason.
type Facts struct {
	// Region and Account are used to build ARNs.
	Region  string
	Account string
	// Partition is "aws" unless the region says otherwise.
	Partition string

	// RemoteEndpoints are endpoints in other VPCs that private hosted
	// zones point at, by endpoint ID.
	RemoteEndpoints map[string]*RemoteEndpoint

	// Instances are the EC2 instances of the targets, by ID.
	Instances map[string]*Instance
	// Missing are targets that matched no instance, with the reason.
	Missing map[string]string

	// Managed is DescribeInstanceInformation by instance ID; ManagedErr is
	// set when it could not be listed.
	Managed    map[string]*Managed
	ManagedErr error

	// VPCs by ID.
	VPCs map[string]*VPC

	// Profiles by instance profile ARN; Roles by role name.
	Profiles map[string]*Profile
	Roles    map[string]*Role
	// DefaultProfile is the instance profile named DefaultInstanceProfile,
	// read when an instance has none (nil otherwise); fixes associate it,
	// or create it first when it does not exist.
	DefaultProfile *Profile

	// CoreActions are the actions of AmazonSSMManagedInstanceCore;
	// CoreSource says where the list came from.
	CoreActions []string
	CoreSource  string

	// DHM is the default host management service setting (nil when not
	// needed: every instance has a profile).
	DHM *Setting

	// Prefs is the session preferences document.
	Prefs *Prefs
	// Bucket, LogGroup and Key are what Prefs names (nil when unused).
	Bucket   *Bucket
	LogGroup *LogGroup
	Key      *Key

	// Caller is who runs the doctor.
	Caller *Caller
}

// Instance is what the checks need of an EC2 instance.
type Instance struct {
	ID, Name         string
	State            string // running, stopped…
	VpcID, SubnetID  string
	AvailabilityZone string
	PrivateIP        string
	PublicIP         string
	ProfileARN       string
	SecurityGroups   []string
	// HTTPTokens is the IMDS setting: "required" means IMDSv2 only.
	HTTPTokens string
	// Tags are the instance's tags (ssm:resourceTag/… in the caller's
	// policies).
	Tags map[string]string
}

// Managed is one entry of DescribeInstanceInformation.
type Managed struct {
	PingStatus   string
	LastPing     time.Time
	AgentVersion string
	PlatformType string
	PlatformName string
	ResourceType string
	// IAMRole is the role a hybrid node registered with (its activation's
	// role); EC2 instances report their profile's role.
	IAMRole string
	// IPAddress and ComputerName are what the agent reported.
	IPAddress, ComputerName string
}

// VPC holds one VPC's network facts.
type VPC struct {
	ID   string
	CIDR string
	// DNSSupport and DNSHostnames are the VPC attributes (nil: unknown).
	DNSSupport, DNSHostnames *bool
	Subnets                  map[string]Subnet
	RouteTables              []RouteTable
	Endpoints                []Endpoint
	SecurityGroups           map[string]SecurityGroup
	NACLs                    []NACL
	// NATGateways are the VPC's NAT gateways by ID (any state).
	NATGateways map[string]NATGateway
	// InternetGateways are the IDs of the internet gateways attached to
	// the VPC.
	InternetGateways []string
	// Zones are the Route 53 private hosted zones associated with the VPC
	// whose names cover an AWS service endpoint (ssm.<region>.amazonaws.com
	// and the like): DNS in the VPC answers from them, which is how
	// centralised (hub) endpoints are reached. ZonesErr is why they could
	// not be listed; the checks then assume there are none.
	Zones    []HostedZone
	ZonesErr error
	// Err is the first error met while describing the VPC.
	Err error
}

// NATGateway is a NAT gateway and the subnet it sits in.
type NATGateway struct {
	ID, SubnetID string
	// State is pending, available, deleting, deleted or failed.
	State string
}

// HostedZone is a private hosted zone and the alias records it holds for
// service names.
type HostedZone struct {
	ID, Name string
	// Aliases maps a record name (lower case, no trailing dot) to the
	// VPC endpoint ID its alias target names ("" when it names no
	// endpoint).
	Aliases map[string]string
	Err     error
}

// RemoteEndpoint is an interface endpoint in another VPC that a private
// hosted zone points at (a hub VPC reached by peering or a transit
// gateway), with what the checks need of its VPC.
type RemoteEndpoint struct {
	Endpoint
	VpcID string
	// SubnetCIDRs are the CIDRs of the endpoint's subnets.
	SubnetCIDRs []string
	// SecurityGroups are the endpoint's groups with their rules.
	Groups map[string]SecurityGroup
	Err    error
}

// Subnet is a subnet of a VPC.
type Subnet struct {
	ID, CIDR, AvailabilityZone string
}

// RouteTable is a route table with its subnet associations.
type RouteTable struct {
	ID        string
	Main      bool
	SubnetIDs []string
	Routes    []Route
}

// Route is one route; Target is the gateway, NAT gateway, or other hop ID.
type Route struct {
	Destination string
	Target      string
	State       string
}

// Endpoint is a VPC endpoint.
type Endpoint struct {
	ID string
	// Service is the short service name: ssm, ssmmessages, ec2messages,
	// s3, logs, kms…
	Service        string
	Type           string // Interface or Gateway
	State          string
	PrivateDNS     bool
	SubnetIDs      []string
	SecurityGroups []string
	// Policy is the endpoint policy document (may be empty).
	Policy string
	// RouteTableIDs are a gateway endpoint's route tables.
	RouteTableIDs []string
}

// SecurityGroup is a security group with its rules.
type SecurityGroup struct {
	ID              string
	Ingress, Egress []SGRule
}

// SGRule is one security group permission.
type SGRule struct {
	Protocol string // "tcp", "udp", "-1"…
	From, To int32
	CIDRs    []string
	Groups   []string
	// PrefixLists are prefix list IDs (their CIDRs are not resolved).
	PrefixLists []string
}

// NACL is a network ACL.
type NACL struct {
	ID        string
	Default   bool
	SubnetIDs []string
	Entries   []NACLEntry
}

// NACLEntry is one network ACL rule.
type NACLEntry struct {
	Number   int32
	Egress   bool
	Protocol string // "6" (tcp), "-1" (all)…
	From, To int32  // port range; 0,0 with protocol -1 means all
	CIDR     string
	Allow    bool
}

// Profile is an instance profile.
type Profile struct {
	ARN, Name string
	// RoleName is the profile's role ("" when it has none).
	RoleName string
	Err      error
}

// InlinePolicyPrefix marks inline policies in Role.PolicyNames and in
// policy documents' names ("inline:NAME"); managed policies go by ARN.
const InlinePolicyPrefix = "inline:"

func (p *Profile) exists() bool { return p != nil && p.Err == nil && p.RoleName != "" }

// Role is an IAM role with its trust policy and permission policies.
type Role struct {
	Name, ARN string
	Trust     *policy.Document
	// Policies are its managed and inline policies' documents.
	Policies []policy.Document
	// PolicyNames name them, for evidence.
	PolicyNames []string
	Err         error
}

// Setting is an SSM service setting.
type Setting struct {
	ID, Value string
	Err       error
}

// Prefs are the session preferences (a Session document's inputs).
type Prefs struct {
	Document string
	// Found is false when the document does not exist (Session Manager
	// then uses its defaults).
	Found bool
	// Err is a read or parse error.
	Err error

	S3Bucket, S3Prefix   string
	S3Encryption         bool
	LogGroup             string
	CWEncryption         bool
	CWStreaming          bool
	KMSKeyID             string
	IdleTimeout          string
	MaxDuration          string
	ShellProfileLinux    string
	ShellProfileWindows  string
	RunAsEnabled         bool
	RunAsDefaultUser     string
	UnknownSessionInputs []string
	// Invalid holds what prefs.Validate found, by input key.
	Invalid map[string]string
	// Doc is the parsed document (nil when missing or unreadable).
	Doc *prefs.Document
}

// Bucket is the logging bucket.
type Bucket struct {
	Name      string
	Exists    bool
	Encrypted bool
	// EncryptionErr is why encryption could not be read (nil if read).
	EncryptionErr error
	Err           error
}

// LogGroup is the logging log group.
type LogGroup struct {
	Name     string
	Exists   bool
	KMSKeyID string
	Err      error
}

// Key is the KMS key of the preferences.
type Key struct {
	// ID is the key as the preferences name it (ID, ARN or alias); KeyID
	// is its bare key ID, as DescribeKey reports it.
	ID, ARN, KeyID string
	Exists         bool
	Enabled        bool
	State          string
	Policy         *policy.Document
	// PolicyErr is why the key policy could not be read.
	PolicyErr error
	Err       error
}

// Caller is the identity running the doctor and what it may do.
type Caller struct {
	ARN, Account string
	// UserID is GetCallerIdentity's UserId (aws:userid in policies).
	UserID string
	Err    error
	// Method is "iam:SimulatePrincipalPolicy" or "policy evaluation".
	Method string
	// Simulated holds SimulatePrincipalPolicy answers by "action resource".
	Simulated map[string]policy.Decision
	// Policies are the caller's policies for own evaluation.
	Policies []policy.Document
	// EvalErr is why neither method could be used.
	EvalErr error
}
