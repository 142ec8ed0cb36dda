package target_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/target"
)

// TestResolveAgainstSandbox resolves every EC2 target form against moto's
// real filter implementation behind the sandbox.
func TestResolveAgainstSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{
		{Name: "web-1", Tags: map[string]string{"team": "blue", "env": "prod"}},
		{Name: "web-2", Tags: map[string]string{"team": "blue", "env": "dev"}},
		{Name: "db-1", Tags: map[string]string{"team": "data"}},
		{Name: "lab-7", Hybrid: true, Tags: map[string]string{"site": "lab"}},
	}})
	var lab *sandbox.Instance
	for _, inst := range sb.Instances() {
		if inst.Hybrid {
			lab = inst
		}
	}
	if lab == nil || !target.IsManagedNodeID(lab.ID) {
		t.Fatalf("no hybrid node: %+v", sb.Instances())
	}
	cfg := sb.AWSConfig()
	ctx := context.Background()
	ec2c := ec2.NewFromConfig(cfg)
	out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]struct{ id, ip, dns string }{}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			for _, tag := range inst.Tags {
				if aws.ToString(tag.Key) == "Name" {
					byName[aws.ToString(tag.Value)] = struct{ id, ip, dns string }{aws.ToString(inst.InstanceId), aws.ToString(inst.PrivateIpAddress), aws.ToString(inst.PrivateDnsName)}
				}
			}
		}
	}
	web1, web2, db1 := byName["web-1"], byName["web-2"], byName["db-1"]
	if web1.id == "" || web1.ip == "" || web1.dns == "" {
		t.Fatalf("moto instances: %+v", byName)
	}
	r := target.Resolver{EC2: ec2c, SSM: ssm.NewFromConfig(cfg)}
	for _, tt := range []struct {
		in      string
		pickOne bool
		want    string
		wantErr error
	}{
		{in: web1.id, want: web1.id},
		{in: "web-2", want: web2.id},
		{in: "tag:env=prod", want: web1.id},
		{in: "tag:team=data", want: db1.id},
		{in: web2.ip, want: web2.id},
		{in: db1.dns, want: db1.id},
		{in: "db-*", pickOne: true, want: db1.id},
		// The hybrid node: its computer name, the name's first label, its
		// address, its tag.
		{in: "lab-7.corp.example", want: lab.ID},
		{in: "lab-7", want: lab.ID},
		{in: lab.PrivateIP, want: lab.ID},
		{in: "tag:site=lab", want: lab.ID},
		{in: lab.ID, want: lab.ID},
		{in: "db-*", wantErr: target.ErrAmbiguous},
		{in: "tag:team=blue", wantErr: target.ErrAmbiguous},
		{in: "web-?", pickOne: true, wantErr: target.ErrAmbiguous},
		{in: "nope", wantErr: target.ErrNotFound},
		{in: "10.255.255.254", wantErr: target.ErrNotFound},
	} {
		n, err := r.Resolve(ctx, tt.in, target.ResolveOptions{PickOne: tt.pickOne})
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Resolve(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || n.ID != tt.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %s", tt.in, n, err, tt.want)
		}
	}
	// The picker's list: every sandbox node, named from EC2.
	nodes, err := target.ListNodes(ctx, r.SSM, r.EC2, nil)
	if err != nil || len(nodes) != 4 || nodes[0].Name != "db-1" || nodes[0].PingStatus != "Online" || nodes[0].EC2State != "running" {
		t.Errorf("ListNodes = %+v, %v", nodes, err)
	}
}
