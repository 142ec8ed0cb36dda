package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

// baseFacts is one healthy instance in a public subnet, built by hand.
func baseFacts(t *testing.T) *Facts {
	t.Helper()
	trust, _ := policy.Parse("trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	core, _ := policy.Parse("core", `{"Statement":[{"Effect":"Allow","Action":["ssm:*","ssmmessages:*","ec2messages:*"],"Resource":"*"}]}`)
	yes := true
	return &Facts{
		Region: "us-east-1", Account: "1", Partition: "aws",
		Instances: map[string]*Instance{"i-1": {ID: "i-1", State: "running", VpcID: "vpc-1", SubnetID: "subnet-1",
			AvailabilityZone: "us-east-1a", PrivateIP: "10.0.1.10", PublicIP: "3.3.3.3", ProfileARN: "arn:aws:iam::1:instance-profile/p",
			SecurityGroups: []string{"sg-i"}, HTTPTokens: "required"}},
		Managed: map[string]*Managed{"i-1": {PingStatus: "Online", LastPing: time.Now(), AgentVersion: "3.3.1142.0", PlatformType: "Linux"}},
		VPCs: map[string]*VPC{"vpc-1": {ID: "vpc-1", CIDR: "10.0.0.0/16", DNSSupport: &yes, DNSHostnames: &yes,
			Subnets:        map[string]Subnet{"subnet-1": {ID: "subnet-1", CIDR: "10.0.1.0/24", AvailabilityZone: "us-east-1a"}},
			RouteTables:    []RouteTable{{ID: "rtb-1", SubnetIDs: []string{"subnet-1"}, Routes: []Route{{Destination: "0.0.0.0/0", Target: "igw-1", State: "active"}}}},
			SecurityGroups: map[string]SecurityGroup{"sg-i": {ID: "sg-i", Egress: []SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}}},
			NACLs: []NACL{{ID: "acl-1", Default: true, Entries: []NACLEntry{
				{Number: 100, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0", Allow: true},
				{Number: 100, Egress: false, Protocol: "-1", CIDR: "0.0.0.0/0", Allow: true}}}}}},
		Profiles:    map[string]*Profile{"arn:aws:iam::1:instance-profile/p": {ARN: "arn:aws:iam::1:instance-profile/p", Name: "p", RoleName: "r"}},
		Roles:       map[string]*Role{"r": {Name: "r", ARN: "arn:aws:iam::1:role/r", Trust: &trust, Policies: []policy.Document{core}}},
		CoreActions: builtinCoreActions, CoreSource: "test",
		Prefs:  &Prefs{Document: DefaultDocument},
		Caller: &Caller{ARN: "arn:aws:iam::1:user/u", Account: "1", Method: "policy evaluation", Policies: []policy.Document{core}},
	}
}

func statusOf(r InstanceReport, id string) Status {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

func failingIDs(r InstanceReport) map[string]bool {
	out := map[string]bool{}
	for _, c := range r.Checks {
		if c.Status == Fail {
			out[c.ID] = true
		}
	}
	return out
}

func TestChecksHandBuilt(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(f *Facts)
		fail   []string
		warn   []string
		pass   []string
		// target is the instance checked ("i-1" when empty).
		target string
		// commands are the exact fix commands of some checks;
		// commandPrefix how their first command starts.
		commands      map[string][]string
		commandPrefix map[string]string
	}{
		{name: "healthy"},
		{name: "stopped", mutate: func(f *Facts) { f.Instances["i-1"].State = "stopped"; f.Managed["i-1"].PingStatus = "ConnectionLost" },
			fail: []string{"instance.running", "agent.online"}},
		{name: "agent 3.0.161.0 forwards ports but one connection at a time", mutate: func(f *Facts) { f.Managed["i-1"].AgentVersion = "3.0.161.0" },
			pass: []string{"agent.feature.port-forwarding"}, warn: []string{"agent.feature.multiplexing", "agent.feature.remote-host"}},
		{name: "agent older than port forwarding", mutate: func(f *Facts) { f.Managed["i-1"].AgentVersion = "2.3.600.0" },
			warn: []string{"agent.feature.port-forwarding", "agent.feature.multiplexing", "agent.feature.remote-host"}},
		{name: "remote host forwarding arrived in 3.1.1188.0", mutate: func(f *Facts) { f.Managed["i-1"].AgentVersion = "3.1.1188.0" },
			pass: []string{"agent.feature.port-forwarding", "agent.feature.multiplexing", "agent.feature.remote-host"}},
		{name: "shell profile needs a newer agent", mutate: func(f *Facts) {
			f.Managed["i-1"].AgentVersion = "3.0.100.0"
			f.Prefs = &Prefs{Document: DefaultDocument, Found: true, ShellProfileLinux: "bash"}
		}, fail: []string{"agent.feature.shell-profile"}, warn: []string{"agent.feature.multiplexing", "agent.feature.remote-host"}},
		{name: "no public IP", mutate: func(f *Facts) { f.Instances["i-1"].PublicIP = "" }, fail: []string{"network.route"}},
		{name: "NAT route", mutate: func(f *Facts) {
			f.Instances["i-1"].PublicIP = ""
			f.VPCs["vpc-1"].RouteTables[0].Routes[0].Target = "nat-1"
		}},
		{name: "NACL denies 443 out", mutate: func(f *Facts) {
			acl := &f.VPCs["vpc-1"].NACLs[0]
			acl.Entries = append(acl.Entries, NACLEntry{Number: 50, Egress: true, Protocol: "6", From: 443, To: 443, CIDR: "0.0.0.0/0", Allow: false})
		}, fail: []string{"network.nacl"}},
		{name: "NACL without ephemeral ports back", mutate: func(f *Facts) {
			acl := &f.VPCs["vpc-1"].NACLs[0]
			acl.Entries[1] = NACLEntry{Number: 100, Egress: false, Protocol: "6", From: 22, To: 22, CIDR: "0.0.0.0/0", Allow: true}
		}, fail: []string{"network.nacl"}},
		{name: "no egress 443", mutate: func(f *Facts) {
			f.VPCs["vpc-1"].SecurityGroups["sg-i"] = SecurityGroup{ID: "sg-i", Egress: []SGRule{{Protocol: "tcp", From: 80, To: 80, CIDRs: []string{"0.0.0.0/0"}}}}
		}, fail: []string{"network.instance-sg-egress-443"}},
		{name: "DNS off", mutate: func(f *Facts) { no := false; f.VPCs["vpc-1"].DNSSupport = &no }, fail: []string{"network.vpc-dns"}},
		{name: "role explicitly denied", mutate: func(f *Facts) {
			deny, _ := policy.Parse("deny", `{"Statement":[{"Effect":"Deny","Action":"ssmmessages:*","Resource":"*"}]}`)
			f.Roles["r"].Policies = append(f.Roles["r"].Policies, deny)
		}, fail: []string{"identity.core-policy"}},
		{name: "role trusts the wrong service", mutate: func(f *Facts) {
			tr, _ := policy.Parse("trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
			f.Roles["r"].Trust = &tr
		}, fail: []string{"identity.role-trust"}},
		{name: "default host management", mutate: func(f *Facts) {
			f.Instances["i-1"].ProfileARN = ""
			tr, _ := policy.Parse("trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
			f.Roles["dhm"] = &Role{Name: "dhm", ARN: "arn:aws:iam::1:role/dhm", Trust: &tr, Policies: f.Roles["r"].Policies}
			f.DHM = &Setting{ID: DHMSettingID, Value: "service-role/dhm"}
		}},
		{name: "default host management without IMDSv2", mutate: func(f *Facts) {
			f.Instances["i-1"].ProfileARN = ""
			f.Instances["i-1"].HTTPTokens = "optional"
			f.DHM = &Setting{ID: DHMSettingID, Value: "service-role/dhm"}
		}, fail: []string{"identity.profile"}},
		{name: "bad preferences", mutate: func(f *Facts) {
			f.Prefs = ParsePrefs(DefaultDocument, `{"sessionType":"Standard_Stream","inputs":{"idleSessionTimeout":"90","maxSessionDuration":"0"}}`)
		}, fail: []string{"prefs.idle-timeout", "prefs.max-duration"}},
		{name: "unparsable preferences", mutate: func(f *Facts) { f.Prefs = ParsePrefs(DefaultDocument, `{`) }, fail: []string{"prefs.document"}},
		{name: "caller may not start sessions", mutate: func(f *Facts) { f.Caller.Policies = nil }, fail: []string{"caller.start-session"}},
		{name: "blackhole default route (hand-built facts: moto cannot make a blackhole route)", mutate: func(f *Facts) {
			privateWithNAT(f, "blackhole")
		}, fail: []string{"network.route"}, commands: map[string][]string{"network.route": {
			"aws ec2 replace-route --route-table-id rtb-priv --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-ok"}}},
		{name: "blackhole default route and no NAT gateway to use (hand-built facts)", mutate: func(f *Facts) {
			privateWithNAT(f, "blackhole")
			delete(f.VPCs["vpc-1"].NATGateways, "nat-ok")
		}, fail: []string{"network.route"}, commandPrefix: map[string]string{"network.route": "aws ec2 create-vpc-endpoint --vpc-id vpc-1 --vpc-endpoint-type Interface --service-name com.amazonaws.us-east-1.ssm --subnet-ids subnet-priv --security-group-ids sg-i --private-dns-enabled"}},
		{name: "NAT gateway deleted (hand-built facts)", mutate: func(f *Facts) { privateWithNAT(f, "deleted") },
			fail: []string{"network.route"}, commands: map[string][]string{"network.route": {
				"aws ec2 replace-route --route-table-id rtb-priv --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-ok"}}},
		{name: "hub zone without a record for the name (hand-built facts)", mutate: func(f *Facts) {
			hubFacts(f, true)
			delete(f.VPCs["vpc-1"].Zones[0].Aliases, "ssm.us-east-1.amazonaws.com")
		}, fail: []string{"network.route"}},
		{name: "hub endpoints without a route to them (hand-built facts)", mutate: func(f *Facts) { hubFacts(f, false) },
			fail: []string{"network.route"}},
		{name: "hub endpoints over a transit gateway (hand-built facts)", mutate: func(f *Facts) { hubFacts(f, true) }},
		{name: "hub endpoint security group without 443 from the spoke (hand-built facts)", mutate: func(f *Facts) {
			hubFacts(f, true)
			f.RemoteEndpoints["vpce-hub"].Groups["sg-hub"] = SecurityGroup{ID: "sg-hub"}
		}, fail: []string{"network.endpoint-sg-443"}, commandPrefix: map[string]string{"network.endpoint-sg-443": "aws ec2 authorize-security-group-ingress --group-id sg-hub "}},
		{name: "hybrid node: default host management is not for it", mutate: func(f *Facts) {
			f.Instances["mi-1"] = &Instance{ID: "mi-1", State: "hybrid"}
			f.Managed["mi-1"] = &Managed{PingStatus: "Online", AgentVersion: "3.3.1142.0", ResourceType: "ManagedInstance", IAMRole: "hybrid"}
			tr, _ := policy.Parse("trust", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
			f.Roles["hybrid"] = &Role{Name: "hybrid", ARN: "arn:aws:iam::1:role/hybrid", Trust: &tr, Policies: f.Roles["r"].Policies}
		}, target: "mi-1", pass: []string{"identity.profile", "identity.role-trust", "identity.core-policy"}},
		{name: "cannot list managed nodes", mutate: func(f *Facts) { f.Managed = map[string]*Managed{}; f.ManagedErr = errTest }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := baseFacts(t)
			if tt.mutate != nil {
				tt.mutate(f)
			}
			target := tt.target
			if target == "" {
				target = "i-1"
			}
			r := CheckInstance(f, target, time.Now())
			for id, want := range tt.commands {
				if got := checkByID(r, id).Commands; !slices.Equal(got, want) {
					t.Errorf("%s commands = %q, want %q", id, got, want)
				}
			}
			for id, want := range tt.commandPrefix {
				if got := checkByID(r, id).Commands; len(got) == 0 || !strings.HasPrefix(got[0], want) {
					t.Errorf("%s commands = %q, want them to start %q", id, got, want)
				}
			}
			got := failingIDs(r)
			for _, id := range tt.fail {
				if !got[id] {
					t.Errorf("%s should fail", id)
				}
				delete(got, id)
			}
			for id := range got {
				t.Errorf("%s fails unexpectedly", id)
			}
			for _, id := range tt.warn {
				if s := statusOf(r, id); s != Warn {
					t.Errorf("%s = %s, want warn", id, s)
				}
			}
			for _, id := range tt.pass {
				if s := statusOf(r, id); s != Pass {
					t.Errorf("%s = %s, want pass", id, s)
				}
			}
			for i, c := range r.Checks {
				if c.ID != CheckIDs[i] || c.Status == "" || c.Summary == "" {
					t.Errorf("check %d: %+v", i, c)
				}
			}
		})
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("access denied")

func TestMissingTarget(t *testing.T) {
	f := baseFacts(t)
	f.Missing = map[string]string{"web-9": "no instance with Name tag \"web-9\""}
	rep := Run(f, time.Now())
	if rep.Summary.Instances != 2 || rep.Summary.Failing != 1 || !rep.Failed() {
		t.Errorf("summary %+v", rep.Summary)
	}
}

func checkByID(r InstanceReport, id string) Check {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return Check{}
}

// privateWithNAT moves i-1 to a private subnet whose default route goes
// to NAT gateway nat-gone in the given state ("blackhole": the route is a
// blackhole), next to a healthy NAT gateway nat-ok in the public subnet.
func privateWithNAT(f *Facts, state string) {
	i := f.Instances["i-1"]
	i.SubnetID, i.PublicIP = "subnet-priv", ""
	v := f.VPCs["vpc-1"]
	v.Subnets["subnet-priv"] = Subnet{ID: "subnet-priv", CIDR: "10.0.2.0/24", AvailabilityZone: "us-east-1a"}
	v.InternetGateways = []string{"igw-1"}
	route := Route{Destination: "0.0.0.0/0", Target: "nat-gone", State: "active"}
	v.NATGateways = map[string]NATGateway{"nat-ok": {ID: "nat-ok", SubnetID: "subnet-1", State: "available"},
		"nat-gone": {ID: "nat-gone", SubnetID: "subnet-1", State: state}}
	if state == "blackhole" {
		route.State = "blackhole"
		delete(v.NATGateways, "nat-gone")
	}
	v.RouteTables = append(v.RouteTables, RouteTable{ID: "rtb-priv", SubnetIDs: []string{"subnet-priv"}, Routes: []Route{route}})
}

// hubFacts moves i-1 to a spoke subnet without a default route whose VPC
// is associated with a private hosted zone per agent service, aliased to
// endpoints in vpc-hub (10.9.1.0/24); routed says whether the spoke's
// route table reaches 10.9.0.0/16 through a transit gateway.
func hubFacts(f *Facts, routed bool) {
	i := f.Instances["i-1"]
	i.PublicIP = ""
	v := f.VPCs["vpc-1"]
	v.RouteTables[0].Routes = nil
	if routed {
		v.RouteTables[0].Routes = []Route{{Destination: "10.9.0.0/16", Target: "tgw-1", State: "active"}}
	}
	f.RemoteEndpoints = map[string]*RemoteEndpoint{}
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		host := svc + ".us-east-1.amazonaws.com"
		id := "vpce-hub"
		if svc != "ssm" {
			id = "vpce-hub-" + svc
		}
		v.Zones = append(v.Zones, HostedZone{ID: "Z" + svc, Name: host, Aliases: map[string]string{host: id}})
		f.RemoteEndpoints[id] = &RemoteEndpoint{Endpoint: Endpoint{ID: id, Service: svc, Type: "Interface", State: "available", SubnetIDs: []string{"subnet-hub"},
			SecurityGroups: []string{"sg-hub"}}, VpcID: "vpc-hub", SubnetCIDRs: []string{"10.9.1.0/24"},
			Groups: map[string]SecurityGroup{"sg-hub": {ID: "sg-hub", Ingress: []SGRule{{Protocol: "tcp", From: 443, To: 443, CIDRs: []string{"10.0.0.0/16"}}}}}}
	}
}

func TestDocumentARN(t *testing.T) {
	f := &Facts{Partition: "aws", Region: "eu-west-1", Account: "123456789012"}
	for doc, want := range map[string]string{
		"SSM-SessionManagerRunShell":     "arn:aws:ssm:eu-west-1:123456789012:document/SSM-SessionManagerRunShell",
		"Team-Shell":                     "arn:aws:ssm:eu-west-1:123456789012:document/Team-Shell",
		"AWS-StartPortForwardingSession": "arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSession",
	} {
		if got := documentARN(f, doc); got != want {
			t.Errorf("documentARN(%s) = %s, want %s", doc, got, want)
		}
	}
}
