package target

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		kind    Kind
		id      string
		name    string
		tag     string
		wild    bool
		wantErr bool
	}{
		{in: "i-0123456789abcdef0", kind: KindInstanceID, id: "i-0123456789abcdef0"},
		{in: "i-01234567", kind: KindInstanceID, id: "i-01234567"},
		{in: "mi-0123456789abcdef0", kind: KindManagedNodeID, id: "mi-0123456789abcdef0"},
		{in: "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0", kind: KindARN, id: "i-0123456789abcdef0"},
		{in: "arn:aws:ssm:eu-west-1:111122223333:managed-instance/mi-0123456789abcdef0", kind: KindARN, id: "mi-0123456789abcdef0"},
		{in: "arn:aws:s3:::bucket", wantErr: true},
		{in: "arn:nope", wantErr: true},
		{in: "10.0.1.5", kind: KindIP},
		{in: "fd00::5", kind: KindIP},
		{in: "[fd00::5]", kind: KindIP},
		{in: "ip-10-0-1-5.ec2.internal", kind: KindDNSName, name: "ip-10-0-1-5.ec2.internal"},
		{in: "IP-10-0-1-5.eu-west-1.compute.internal", kind: KindDNSName, name: "ip-10-0-1-5.eu-west-1.compute.internal"},
		{in: "i-0123456789abcdef0.us-west-2.compute.internal", kind: KindInstanceID, id: "i-0123456789abcdef0"},
		{in: "tag:team=web", kind: KindTag, tag: "team=web"},
		{in: "tag:team=web*", kind: KindTag, tag: "team=web*", wild: true},
		{in: "tag:team", wantErr: true},
		{in: "tag:=x", wantErr: true},
		{in: "web-1*", kind: KindPattern, name: "web-1*", wild: true},
		{in: "web-?", kind: KindPattern, name: "web-?", wild: true},
		{in: "web-1", kind: KindName, name: "web-1"},
		{in: "i-am-web", kind: KindName, name: "i-am-web"},
		{in: "web01.corp.example.com", kind: KindName, name: "web01.corp.example.com"},
		{in: "", wantErr: true},
		{in: "  ", wantErr: true},
	}
	for _, tt := range tests {
		sp, err := Parse(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) err = %v, want ErrInvalid", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		tag := ""
		if sp.Kind == KindTag {
			tag = sp.TagKey + "=" + sp.TagValue
		}
		if sp.Kind != tt.kind || sp.ID != tt.id || sp.Name != tt.name || tag != tt.tag || sp.Wildcard() != tt.wild {
			t.Errorf("Parse(%q) = %+v (wildcard %v)", tt.in, sp, sp.Wildcard())
		}
	}
}

func TestIDHelpers(t *testing.T) {
	if !IsInstanceID("i-0123456789abcdef0") || IsInstanceID("mi-0123456789abcdef0") || IsInstanceID("i-xyz") {
		t.Error("IsInstanceID")
	}
	if !IsManagedNodeID("mi-0123456789abcdef0") || IsManagedNodeID("i-0123456789abcdef0") {
		t.Error("IsManagedNodeID")
	}
	got := IDsIn("The instance IDs 'i-0000000000000000a, mi-0000000000000000b' do not exist")
	if strings.Join(got, ",") != "i-0000000000000000a,mi-0000000000000000b" {
		t.Errorf("IDsIn = %v", got)
	}
}

// fakeInstance is one EC2 instance of fakeEC2.
type fakeInstance struct {
	id, name, ip, ipv6, dns, state string
	tags                           map[string]string
}

// fakeEC2 answers DescribeInstances by ID or with the filters the
// resolver uses, with EC2's wildcard semantics.
type fakeEC2 struct {
	mu    sync.Mutex
	insts []fakeInstance
	err   error
	calls [][]string
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, in.InstanceIds)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []ec2types.Instance
	var missing []string
	for _, id := range in.InstanceIds {
		found := false
		for _, fi := range f.insts {
			if fi.id == id {
				found = true
			}
		}
		if !found {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: fmt.Sprintf("The instance IDs '%s' do not exist", strings.Join(missing, ", "))}
	}
	for _, fi := range f.insts {
		if len(in.InstanceIds) > 0 && !contains(in.InstanceIds, fi.id) {
			continue
		}
		if !f.passes(fi, in.Filters) {
			continue
		}
		inst := ec2types.Instance{
			InstanceId: aws.String(fi.id), PrivateIpAddress: aws.String(fi.ip),
			State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(fi.state)},
		}
		if fi.name != "" {
			inst.Tags = append(inst.Tags, ec2types.Tag{Key: aws.String("Name"), Value: aws.String(fi.name)})
		}
		for k, v := range fi.tags {
			inst.Tags = append(inst.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out = append(out, inst)
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: out}}}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fakeEC2) passes(fi fakeInstance, filters []ec2types.Filter) bool {
	for _, flt := range filters {
		name, want := aws.ToString(flt.Name), flt.Values[0]
		var have string
		switch {
		case name == "instance-state-name":
			have = fi.state
		case name == "tag:Name":
			have = fi.name
		case strings.HasPrefix(name, "tag:"):
			have = fi.tags[strings.TrimPrefix(name, "tag:")]
		case name == "private-ip-address":
			have = fi.ip
		case name == "ipv6-address":
			have = fi.ipv6
		case name == "private-dns-name":
			have = fi.dns
		default:
			panic("unexpected filter " + name)
		}
		// EC2 wildcards: * and ?, with \ escaping.
		if ok, _ := path.Match(want, have); !ok {
			return false
		}
	}
	return true
}

// fakeSSM lists managed nodes, honouring ResourceType and tag filters and
// MaxResults (5 per page without it).
type fakeSSM struct {
	nodes []ssmtypes.InstanceInformation
	tags  map[string]map[string]string // id → tags
	err   error
	calls int
}

func (f *fakeSSM) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var all []ssmtypes.InstanceInformation
next:
	for _, n := range f.nodes {
		for _, flt := range in.Filters {
			k := aws.ToString(flt.Key)
			switch {
			case k == "ResourceType":
				if string(n.ResourceType) != flt.Values[0] {
					continue next
				}
			case strings.HasPrefix(k, "tag:"):
				if f.tags[aws.ToString(n.InstanceId)][strings.TrimPrefix(k, "tag:")] != flt.Values[0] {
					continue next
				}
			}
		}
		all = append(all, n)
	}
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		fmt.Sscan(tok, &start)
	}
	size := 5
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}
	end := min(start+size, len(all))
	out := &ssm.DescribeInstanceInformationOutput{InstanceInformationList: all[start:end]}
	if end < len(all) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func managed(id, name, computer, ip string) ssmtypes.InstanceInformation {
	return ssmtypes.InstanceInformation{
		InstanceId: aws.String(id), Name: aws.String(name), ComputerName: aws.String(computer), IPAddress: aws.String(ip),
		ResourceType: ssmtypes.ResourceTypeManagedInstance, PingStatus: ssmtypes.PingStatusOnline, AgentVersion: aws.String("3.3.1142.0"),
	}
}

func fleet() (*fakeEC2, *fakeSSM) {
	e := &fakeEC2{insts: []fakeInstance{
		{id: "i-00000000000000001", name: "web-1", ip: "10.0.1.1", dns: "ip-10-0-1-1.ec2.internal", state: "running", tags: map[string]string{"team": "web", "env": "prod"}},
		{id: "i-00000000000000002", name: "web-2", ip: "10.0.1.2", ipv6: "fd00::2", dns: "ip-10-0-1-2.ec2.internal", state: "running", tags: map[string]string{"team": "web", "env": "dev"}},
		{id: "i-00000000000000003", name: "db", ip: "10.0.2.1", dns: "ip-10-0-2-1.ec2.internal", state: "running", tags: map[string]string{"team": "data"}},
		{id: "i-00000000000000004", name: "db", ip: "10.0.2.2", state: "stopped"},
		{id: "i-00000000000000005", name: "twin", ip: "10.0.3.1", state: "running"},
		{id: "i-00000000000000006", name: "twin", ip: "10.0.3.2", state: "running"},
		{id: "i-00000000000000007", name: `back\slash`, ip: "10.0.3.3", state: "running"},
	}}
	s := &fakeSSM{
		nodes: []ssmtypes.InstanceInformation{
			{InstanceId: aws.String("i-00000000000000001"), ResourceType: ssmtypes.ResourceTypeEc2Instance, PingStatus: ssmtypes.PingStatusOnline},
			managed("mi-00000000000000001", "lab-box", "LABBOX01.corp.example.com", "192.168.1.10"),
			managed("mi-00000000000000002", "", "kiosk-7", "192.168.1.11"),
			managed("mi-00000000000000003", "", "web-9", "192.168.1.12"),
		},
		tags: map[string]map[string]string{"mi-00000000000000001": {"team": "lab"}},
	}
	for i := range 7 { // enough nodes for a second page
		s.nodes = append(s.nodes, managed(fmt.Sprintf("mi-1000000000000000%d", i), "", fmt.Sprintf("filler-%d", i), ""))
	}
	return e, s
}

func TestResolve(t *testing.T) {
	tests := []struct {
		target  string
		pickOne bool
		want    string
		wantErr error
		errHas  string
	}{
		{target: "i-0123456789abcdef0", want: "i-0123456789abcdef0"},
		{target: "mi-0123456789abcdef0", want: "mi-0123456789abcdef0"},
		{target: "arn:aws:ec2:us-east-1:111122223333:instance/i-00000000000000002", want: "i-00000000000000002"},
		{target: "web-1", want: "i-00000000000000001"},
		{target: "db", want: "i-00000000000000003"}, // the stopped one is not a candidate
		{target: "tag:env=dev", want: "i-00000000000000002"},
		{target: "tag:team=lab", want: "mi-00000000000000001"},
		{target: "10.0.2.1", want: "i-00000000000000003"},
		{target: "fd00::2", want: "i-00000000000000002"},
		{target: "192.168.1.11", want: "mi-00000000000000002"},
		{target: "ip-10-0-1-2.ec2.internal", want: "i-00000000000000002"},
		{target: "kiosk-7", want: "mi-00000000000000002"},
		{target: "labbox01", want: "mi-00000000000000001"},
		{target: "LABBOX01.corp.example.com", want: "mi-00000000000000001"},
		{target: "lab-box", want: "mi-00000000000000001"},
		{target: `back\slash`, want: "i-00000000000000007"},
		{target: "kiosk-*", pickOne: true, want: "mi-00000000000000002"},
		{target: "web-1*", pickOne: true, want: "i-00000000000000001"},
		{target: "web-1*", wantErr: ErrAmbiguous, errHas: `the name pattern "web-1*" matches one node, web-1 (i-00000000000000001); pass --pick-one`},
		{target: "tag:env=d*", wantErr: ErrAmbiguous, errHas: "--pick-one"},
		{target: "tag:env=d*", pickOne: true, want: "i-00000000000000002"},
		{target: "web-*", pickOne: true, wantErr: ErrAmbiguous, errHas: "matches 3 nodes: web-1 (i-00000000000000001), web-2 (i-00000000000000002), web-9 (mi-00000000000000003)"},
		{target: "twin", wantErr: ErrAmbiguous, errHas: `the name "twin" matches 2 nodes: twin (i-00000000000000005), twin (i-00000000000000006); give one ID instead`},
		{target: "tag:team=web", wantErr: ErrAmbiguous},
		{target: "nothing", wantErr: ErrNotFound, errHas: `no running instance or managed node matches the name "nothing"`},
		{target: "10.9.9.9", wantErr: ErrNotFound},
		{target: "tag:x", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			e, s := fleet()
			r := Resolver{EC2: e, SSM: s}
			n, err := r.Resolve(context.Background(), tt.target, ResolveOptions{PickOne: tt.pickOne})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.errHas)
				}
				return
			}
			if err != nil || n.ID != tt.want {
				t.Fatalf("Resolve = %+v, %v; want %s", n, err, tt.want)
			}
			if IsNodeID(tt.target) && (len(e.calls) != 0 || s.calls != 0) {
				t.Errorf("an ID made %d EC2 and %d SSM calls", len(e.calls), s.calls)
			}
		})
	}
}

func TestResolveOneLookupFails(t *testing.T) {
	e, s := fleet()
	e.err = &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not authorized"}
	var logged []string
	r := Resolver{EC2: e, SSM: s, Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}
	n, err := r.Resolve(context.Background(), "kiosk-7", ResolveOptions{})
	if err != nil || n.ID != "mi-00000000000000002" {
		t.Fatalf("Resolve = %+v, %v", n, err)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "UnauthorizedOperation") {
		t.Errorf("logged %q", logged)
	}
	// Nothing found and a failure: the failure is the answer.
	_, err = r.Resolve(context.Background(), "web-1", ResolveOptions{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("err = %v, want the EC2 error", err)
	}
	// Without clients only IDs resolve.
	if _, err := (Resolver{}).Resolve(context.Background(), "web-1", ResolveOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("no clients: %v", err)
	}
}

func TestListNodesBatchesAndSkipsUnknown(t *testing.T) {
	e := &fakeEC2{}
	s := &fakeSSM{}
	for i := range 2500 {
		id := fmt.Sprintf("i-%017x", i)
		s.nodes = append(s.nodes, ssmtypes.InstanceInformation{InstanceId: aws.String(id), ResourceType: ssmtypes.ResourceTypeEc2Instance})
		if i%100 != 7 {
			e.insts = append(e.insts, fakeInstance{id: id, name: fmt.Sprintf("n%d", i), state: "running"})
		}
	}
	s.nodes = append(s.nodes, managed("mi-00000000000000001", "hybrid", "h1", ""))
	nodes, err := ListNodes(context.Background(), s, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	named, states := 0, 0
	for _, n := range nodes {
		if n.Name != "" {
			named++
		}
		if n.EC2State == "running" {
			states++
		}
	}
	if len(nodes) != 2501 || named != 2476 || states != 2475 {
		t.Errorf("%d nodes, %d named, %d with a state", len(nodes), named, states)
	}
	// 3 batches (1000, 1000, 500), each retried once without the unknown IDs.
	if len(e.calls) != 6 || len(e.calls[0]) != 1000 || len(e.calls[4]) != 500 || len(e.calls[5]) != 495 {
		t.Errorf("%d DescribeInstances calls", len(e.calls))
	}
	if s.calls != 51 { // 50 per page
		t.Errorf("%d DescribeInstanceInformation calls", s.calls)
	}
	for i := 1; i < len(nodes); i++ {
		if nodes[i-1].DisplayName() > nodes[i].DisplayName() {
			t.Fatalf("not sorted by name at %d: %q > %q", i, nodes[i-1].DisplayName(), nodes[i].DisplayName())
		}
	}
}
