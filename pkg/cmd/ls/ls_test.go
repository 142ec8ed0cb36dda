package ls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

func TestNewCmdLs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		output  cmdutil.OutputFormat
		want    string // filters as key=values;…
		json    bool
		wantErr string
	}{
		{name: "none"},
		{name: "ping and tag", args: []string{"--filter", "ping=Online", "--filter", "tag:team=web,db"}, want: "PingStatus=Online;tag:team=web,db"},
		{name: "other keys", args: []string{"--filter", "platform=Linux", "--filter", "agent=3.2.0.0", "--filter", "id=i-1,i-2", "--filter", "resource-type=ManagedInstance", "--filter", "role=r"},
			want: "PlatformTypes=Linux;AgentVersion=3.2.0.0;InstanceIds=i-1,i-2;ResourceType=ManagedInstance;IamRole=r"},
		{name: "json", args: []string{"--json"}, json: true},
		{name: "global json", output: cmdutil.OutputJSON, json: true},
		{name: "no value", args: []string{"--filter", "ping"}, wantErr: "is not KEY=VALUE"},
		{name: "empty value", args: []string{"--filter", "ping=Online,"}, wantErr: "empty value"},
		{name: "unknown key", args: []string{"--filter", "colour=red"}, wantErr: "unknown filter key \"colour\""},
		{name: "empty tag", args: []string{"--filter", "tag:=x"}, wantErr: "names no tag key"},
		{name: "args", args: []string{"web"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			f.Options.Output = tt.output
			var got *LsOptions
			cmd := NewCmdLs(f, func(o *LsOptions) error { got = o; return nil })
			cmdtest.Prepare(cmd, tt.args)
			_, err := cmd.ExecuteC()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range got.Filters {
				parts = append(parts, aws.ToString(f.Key)+"="+strings.Join(f.Values, ","))
			}
			if s := strings.Join(parts, ";"); s != tt.want || got.JSON != tt.json || got.Clients == nil {
				t.Errorf("filters %q json %v, want %q %v", s, got.JSON, tt.want, tt.json)
			}
		})
	}
}

// register calls AmazonSSM.UpdateInstanceInformation, which the SDK does
// not model (it is the agent's call), with a SigV4-signed request.
func register(ctx context.Context, cfg aws.Config, body map[string]string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, aws.ToString(cfg.BaseEndpoint)+"/", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", cfg.Region, time.Now()); err != nil {
		return err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("UpdateInstanceInformation %s: %s", resp.Status, out)
	}
	return nil
}

// parallel runs fn for 0..n-1 on a few workers and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func TestLsAgainstSandbox500(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox and registers 500 instances")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{
		{Name: "web-1", Tags: map[string]string{"team": "blue"}},
		{Name: "legacy-1", AgentVersion: "3.0.161.0"},
		{Name: "ancient-1", AgentVersion: "2.3.612.0"},
	}})
	cfg := sb.AWSConfig()
	ctx := context.Background()
	ec2c := ec2.NewFromConfig(cfg)

	// 500 instances in moto, launched 100 at a time, each named and
	// registered as a managed node through UpdateInstanceInformation.
	const n = 500
	start := time.Now()
	var insts []ec2types.Instance
	for len(insts) < n {
		out, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceTypeT3Micro,
			MinCount: aws.Int32(100), MaxCount: aws.Int32(100),
		})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, out.Instances...)
	}
	type want struct{ name, ip, agent string }
	wants := map[string]want{}
	var wmu sync.Mutex
	err := parallel(n, 8, func(i int) error {
		id := aws.ToString(insts[i].InstanceId)
		w := want{name: fmt.Sprintf("node-%03d", i), ip: aws.ToString(insts[i].PrivateIpAddress), agent: "3.3.1142.0"}
		if i%10 == 0 {
			w.agent = "2.3.1319.0"
		}
		if _, err := ec2c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(w.name)}}}); err != nil {
			return err
		}
		wmu.Lock()
		wants[id] = w
		wmu.Unlock()
		return register(ctx, cfg, map[string]string{
			"InstanceId": id, "AgentName": "amazon-ssm-agent", "AgentVersion": w.agent, "AgentStatus": "Active",
			"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023", "IPAddress": w.ip,
			"ComputerName": "ip-" + strings.ReplaceAll(w.ip, ".", "-") + ".ec2.internal",
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("launched, named and registered %d instances in %v", n, time.Since(start).Round(time.Millisecond))

	run := func(args ...string) (string, *awsapi.CallCounter, time.Duration) {
		t.Helper()
		c := &awsapi.CallCounter{}
		ccfg := c.Instrument(cfg.Copy())
		ios, _, stdout, stderr := iostreams.Test()
		f := &cmdutil.Factory{IOStreams: ios, AWSConfig: func(context.Context) (aws.Config, error) { return ccfg, nil }}
		cmd := NewCmdLs(f, nil)
		cmdtest.Prepare(cmd, args)
		t0 := time.Now()
		if _, err := cmd.ExecuteContextC(ctx); err != nil {
			t.Fatalf("ls %v: %v %s", args, err, stderr)
		}
		return stdout.String(), c, time.Since(t0)
	}

	out, calls, took := run("--json")
	var nodes []Node
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatal(err)
	}
	total := n + len(sb.Instances())
	if len(nodes) != total {
		t.Fatalf("%d nodes, want %d", len(nodes), total)
	}
	seen := 0
	for _, nd := range nodes {
		w, ok := wants[nd.ID]
		if !ok {
			continue
		}
		seen++
		wantFlags := []string{FlagOffline} // registered, but no agent connected
		if version.AgentCompare(w.agent, "3.0.222.0") < 0 {
			// 2.3.1319.0 forwards ports, one connection at a time.
			wantFlags = append(wantFlags, FlagNoMux)
		}
		if nd.Name != w.name || nd.IPAddress != w.ip || nd.AgentVersion != w.agent || nd.PlatformType != "Linux" ||
			strings.Join(nd.Flags, ",") != strings.Join(wantFlags, ",") {
			t.Fatalf("node %s = %+v, want %+v flags %v", nd.ID, nd, w, wantFlags)
		}
	}
	if seen != n {
		t.Errorf("found %d of the %d registered instances", seen, n)
	}
	// The bound: one DescribeInstanceInformation per 50 nodes and one
	// DescribeInstances per 1000 instances; nothing else.
	bound := (total+50-1)/50 + (total+1000-1)/1000
	t.Logf("ls of %d nodes: %d API calls %v (bound %d) in %v", total, calls.Total(), calls.Counts(), bound, took.Round(time.Millisecond))
	if calls.Total() > bound || calls.Counts()["EC2.DescribeInstances"] != 1 {
		t.Errorf("%d calls %v, want at most %d and one DescribeInstances", calls.Total(), calls.Counts(), bound)
	}

	// The sandbox's own agents: online, named, the old ones flagged:
	// 3.0.161.0 forwards ports without multiplexing (issue 11: it was
	// flagged no-port-forwarding), 2.3.612.0 predates port forwarding.
	out, calls, _ = run("--filter", "ping=Online")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ancient-1\t") || !strings.HasSuffix(lines[0], "\t"+FlagOldAgent) ||
		!strings.HasPrefix(lines[1], "legacy-1\t") || !strings.HasSuffix(lines[1], "\t"+FlagNoMux) ||
		!strings.HasPrefix(lines[2], "web-1\t") || !strings.HasSuffix(lines[2], "\t-") || !strings.Contains(lines[2], "\tOnline\t") {
		t.Errorf("ping=Online:\n%s", out)
	}
	if calls.Total() != 2 {
		t.Errorf("ping=Online made %d calls %v", calls.Total(), calls.Counts())
	}
	out, _, _ = run("--filter", "tag:team=blue")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "web-1\t") {
		t.Errorf("tag:team=blue:\n%s", out)
	}

	// A managed node EC2 does not know (registered, then terminated and
	// purged) does not break the name lookup.
	if err := register(ctx, cfg, map[string]string{"InstanceId": "i-0deadbeef0000001", "AgentVersion": "3.3.1142.0", "PlatformType": "Linux"}); err != nil {
		t.Fatal(err)
	}
	out, calls, _ = run("--json")
	nodes = nil
	if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != total+1 {
		t.Fatalf("%d nodes after an unknown one: %v", len(nodes), err)
	}
	t.Logf("with one node unknown to EC2: %d API calls %v", calls.Total(), calls.Counts())
}
