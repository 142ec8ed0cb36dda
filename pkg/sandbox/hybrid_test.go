package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// TestHybridNode: --instance name:hybrid is an mi- node that joined through
// an activation like a real on-premises server, serves sessions, and
// leaves with DeregisterManagedInstance.
func TestHybridNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{
		{Name: "onprem", Hybrid: true, Tags: map[string]string{"site": "lab"}},
		{Name: "gone", Hybrid: true, Offline: true},
		{Name: "doomed"}, {Name: "kept"},
	}, AutoAttachInterval: 100 * time.Millisecond})
	c, ssmc := clients(sb)
	ctx := context.Background()
	h, off := sb.Instances()[0], sb.Instances()[1]
	if !strings.HasPrefix(h.ID, "mi-") || !h.Hybrid || !h.Online() {
		t.Fatalf("hybrid instance = %+v", h.Instance)
	}
	out, err := ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("ResourceType"), Values: []string{"ManagedInstance"}}}})
	if err != nil || len(out.InstanceInformationList) != 2 {
		t.Fatalf("DescribeInstanceInformation: %v %+v", err, out)
	}
	byID := map[string]ssmtypes.InstanceInformation{}
	for _, i := range out.InstanceInformationList {
		byID[aws.ToString(i.InstanceId)] = i
	}
	n := byID[h.ID]
	if n.PingStatus != ssmtypes.PingStatusOnline || aws.ToString(n.ComputerName) != "onprem.corp.example" || aws.ToString(n.IamRole) != fleet.HybridRoleName ||
		n.PlatformType != ssmtypes.PlatformTypeLinux || !strings.HasPrefix(aws.ToString(n.IPAddress), "192.168.") || aws.ToString(n.Name) != "onprem" ||
		aws.ToString(n.ActivationId) != h.ActivationID || aws.ToString(n.PlatformName) != "Ubuntu" {
		t.Errorf("hybrid node = %+v", n)
	}
	if o := byID[off.ID]; o.PingStatus != ssmtypes.PingStatusConnectionLost || o.LastPingDateTime == nil || time.Since(*o.LastPingDateTime) < 24*time.Hour {
		t.Errorf("offline hybrid node = %+v", o)
	}
	tagged, err := ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("tag:site"), Values: []string{"lab"}}}})
	if err != nil || len(tagged.InstanceInformationList) != 1 {
		t.Errorf("by tag: %v %+v", err, tagged)
	}
	acts, err := ssmc.DescribeActivations(ctx, &ssm.DescribeActivationsInput{})
	if err != nil || len(acts.ActivationList) != 2 || aws.ToInt32(acts.ActivationList[0].RegistrationsCount) != 1 {
		t.Errorf("DescribeActivations: %v %+v", err, acts)
	}

	// The agent's registration call is anonymous, as on AWS: the
	// activation code is the secret.
	act, err := ssmc.CreateActivation(ctx, &ssm.CreateActivationInput{IamRole: aws.String(fleet.HybridRoleName)})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"ActivationCode":%q,"ActivationId":%q,"PublicKey":"k","PublicKeyType":"Rsa"}`, aws.ToString(act.ActivationCode), aws.ToString(act.ActivationId))
	req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.RegisterManagedInstance")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(rb), `"InstanceId":"mi-`) {
		t.Errorf("anonymous RegisterManagedInstance: %d %s", resp.StatusCode, rb)
	}

	// A session on the node.
	s := open(t, c, session.StartRequest{Target: h.ID})
	if got := shellRun(t, s, "echo hybrid-$((40+2))\n", "hybrid-42"); !strings.Contains(got, "hybrid-42") {
		t.Errorf("shell output %q", got)
	}

	// Deregistered, it is gone and its agent stops.
	if _, err := ssmc.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(h.ID)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Online() {
		if time.Now().After(deadline) {
			t.Fatal("the deregistered node's agent is still connected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ = ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	for _, i := range out.InstanceInformationList {
		if aws.ToString(i.InstanceId) == h.ID {
			t.Errorf("deregistered node listed: %+v", i)
		}
	}
	_, err = ssmc.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(h.ID)})
	var iid *ssmtypes.InvalidInstanceId
	if !errors.As(err, &iid) {
		t.Errorf("StartSession on a deregistered node: %v", err)
	}

	t.Run("terminated EC2 instance is deregistered", func(t *testing.T) { terminatedIsDeregistered(t, sb) })
}

// terminatedIsDeregistered: as on AWS, an instance terminated through the
// EC2 API leaves DescribeInstanceInformation (it is not kept as an offline
// node), and its agent stops.
func terminatedIsDeregistered(t *testing.T, sb *sandbox.Sandbox) {
	ctx := context.Background()
	cfg := sb.AWSConfig()
	ssmc := ssm.NewFromConfig(cfg)
	doomed, kept := sb.Instances()[2], sb.Instances()[3]
	if _, err := ec2.NewFromConfig(cfg).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{doomed.ID}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := ssmc.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, i := range out.InstanceInformationList {
			ids[aws.ToString(i.InstanceId)] = true
		}
		if !ids[doomed.ID] {
			if !ids[kept.ID] {
				t.Errorf("the other instance was deregistered too: %+v", out.InstanceInformationList)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still listed after it was terminated: %+v", doomed.ID, out.InstanceInformationList)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if doomed.Online() {
		t.Error("the terminated instance's agent is still connected")
	}
	if !kept.Online() {
		t.Error("the other instance's agent went offline")
	}
}
