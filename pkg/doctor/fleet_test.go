package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/agent"
	"github.com/ssmkit/ssmkit/pkg/sandbox/fleet"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// fleetTag marks the instances buildFleet launches.
var fleetTag = map[string][]string{"fleet": {"bench"}}

// buildFleet launches vpcs×perVPC instances in the account of cfg, spread
// over vpcs VPCs and roles instance profiles, tagged fleet=bench, and
// registers each as a managed node (UpdateInstanceInformation, signed
// with cfg's credentials, as a real agent in that account would).
func buildFleet(tb testing.TB, sb *sandbox.Sandbox, cfg aws.Config, vpcs, roles, perVPC int) {
	tb.Helper()
	ctx := context.Background()
	ec2c, iamc := ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg)
	var profiles []string
	for r := range roles {
		name := fmt.Sprintf("fleet-role-%d", r)
		_, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2Trust)})
		if err == nil {
			_, err = iamc.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(fleet.CorePolicyARN)})
		}
		var prof *iam.CreateInstanceProfileOutput
		if err == nil {
			prof, err = iamc.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)})
		}
		if err == nil {
			_, err = iamc.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)})
		}
		if err != nil {
			tb.Fatalf("role %s: %v", name, err)
		}
		profiles = append(profiles, aws.ToString(prof.InstanceProfile.Arn))
	}
	var mu sync.Mutex
	var ids []string
	eg := &errgroup.Group{}
	eg.SetLimit(4)
	for v := range vpcs {
		eg.Go(func() error {
			vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", 100+v))})
			if err != nil {
				return fmt.Errorf("CreateVpc: %w", err)
			}
			sub, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.%d.1.0/24", 100+v))})
			if err != nil {
				return fmt.Errorf("CreateSubnet: %w", err)
			}
			for launched := 0; launched < perVPC; {
				n := min(100, perVPC-launched)
				out, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(fleet.DefaultImageID), InstanceType: ec2types.InstanceType(fleet.DefaultType),
					MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)), SubnetId: sub.Subnet.SubnetId,
					IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profiles[v%roles])},
					TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
						Tags: []ec2types.Tag{{Key: aws.String("fleet"), Value: aws.String("bench")}}}}})
				if err != nil {
					return fmt.Errorf("RunInstances: %w", err)
				}
				for k, i := range out.Instances {
					if k > 0 {
						// moto attaches the profile to the first instance of
						// a batch only.
						if _, err := ec2c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: i.InstanceId,
							IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(profiles[v%roles])}}); err != nil {
							return fmt.Errorf("AssociateIamInstanceProfile: %w", err)
						}
					}
					mu.Lock()
					ids = append(ids, aws.ToString(i.InstanceId))
					mu.Unlock()
				}
				launched += n
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		tb.Fatal(err)
	}
	// moto builds an account's Route 53 backend on its first call, which
	// takes seconds: an emulator's cold start, not the doctor's work.
	if _, err := route53.NewFromConfig(cfg).ListHostedZones(ctx, &route53.ListHostedZonesInput{}); err != nil {
		tb.Fatalf("warming up Route 53: %v", err)
	}
	reg := &errgroup.Group{}
	reg.SetLimit(8)
	for _, id := range ids {
		reg.Go(func() error { return registerWith(tb, sb, cfg.Credentials, id) })
	}
	if err := reg.Wait(); err != nil {
		tb.Fatal(err)
	}
}

// registerWith registers id as a managed node with creds' account.
func registerWith(tb testing.TB, sb *sandbox.Sandbox, creds aws.CredentialsProvider, id string) error {
	body, _ := json.Marshal(map[string]string{"InstanceId": id, "AgentName": "amazon-ssm-agent", "AgentVersion": agent.DefaultAgentVersion,
		"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023"})
	req, _ := http.NewRequest(http.MethodPost, sb.URL()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.UpdateInstanceInformation")
	sandboxtest.SignWith(tb, creds, sb.Region(), "ssm", req, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("UpdateInstanceInformation %s: %s", id, resp.Status)
	}
	return nil
}

// fleetScale gathers facts for 200 instances over 10 VPCs and 5 roles
// and reports the API calls per operation and the wall time. The call
// count must not grow with instances; the time is printed, not asserted.
// 200 instances take every path 1,000 do (DescribeInstanceInformation in
// chunks of 50, a wildcard instance ARN for the caller's simulation past
// 20 targets) in a fraction of the time moto needs to launch, register and
// describe 1,000 (a minute of make test's time on two busy cores); the
// 1,000-instance fleet is BenchmarkFleetAccounts'. It runs in an account
// of its own (fleetScaleAccount) in the scenarios' sandbox, which spares
// make test a second moto and sandbox; the scenarios do not see it.
func fleetScale(t *testing.T, w *world) {
	const vpcs, roles, perVPC = 10, 5, 20
	cfg := assumeInto(t, w.cfg, fleetScaleAccount)
	setup := time.Now()
	buildFleet(t, w.sb, cfg, vpcs, roles, perVPC)
	t.Logf("setup: %d instances in %s", vpcs*perVPC, time.Since(setup).Round(time.Millisecond))

	var cc awsapi.CallCounter
	g := &doctor.Gatherer{Clients: doctor.NewClients(cc.Instrument(cfg)), Region: w.sb.Region()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	f, err := g.Gather(ctx, doctor.Selection{Tags: fleetTag})
	w.must(err, "Gather")
	rep := doctor.Run(f, time.Now())
	elapsed := time.Since(start)

	counts := cc.Counts()
	for _, op := range awsapi.SortedOps(counts) {
		t.Logf("  %-40s %d", op, counts[op])
	}
	t.Logf("fleet: %d instances, %d VPCs, %d roles: %d API calls, %s wall time (gather + checks)",
		len(rep.Instances), len(f.VPCs), len(f.Roles), cc.Total(), elapsed.Round(time.Millisecond))
	fails := map[string]int{}
	for _, ir := range rep.Instances {
		for _, c := range ir.Checks {
			if c.Status == doctor.Fail {
				fails[c.ID]++
			}
		}
	}
	t.Logf("failing checks: %v", fails)
	if len(rep.Instances) != vpcs*perVPC {
		t.Errorf("%d instances checked, want %d", len(rep.Instances), vpcs*perVPC)
	}
	if len(f.Managed) != vpcs*perVPC {
		t.Errorf("%d managed instances found, want %d", len(f.Managed), vpcs*perVPC)
	}
	if cc.Total() >= 100 {
		t.Errorf("%d API calls, want fewer than 100", cc.Total())
	}
}

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// fleetScaleAccount is fleetScale's account (the benchmark's are 2000000000NN).
const fleetScaleAccount = "300000000001"

// benchAccount is the ID of the i-th account of the fleet benchmark.
func benchAccount(i int) string { return fmt.Sprintf("2000000000%02d", i) }

// assumeInto returns the sandbox configuration with credentials of a role
// in account, minted by STS AssumeRole through the sandbox (moto maps them
// to the account; the sandbox then shows that account's view).
func assumeInto(tb testing.TB, base aws.Config, account string) aws.Config {
	tb.Helper()
	out, err := sts.NewFromConfig(base).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + account + ":role/Audit"), RoleSessionName: aws.String("bench-setup")})
	if err != nil {
		tb.Fatalf("AssumeRole into %s: %v", account, err)
	}
	cfg := base.Copy()
	c := out.Credentials
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	return cfg
}

// opTimer adds up how long calls of each operation took (waiting on the
// sandbox, which is where the benchmark's time goes).
type opTimer struct {
	mu  sync.Mutex
	dur map[string]time.Duration
}

func (o *opTimer) instrument(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("benchTimer", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
			o.mu.Lock()
			if o.dur == nil {
				o.dur = map[string]time.Duration{}
			}
			o.dur[op] += time.Since(start)
			o.mu.Unlock()
			return out, md, err
		}), middleware.After)
	})
	return cfg
}

func (o *opTimer) total(op string) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dur[op]
}

// BenchmarkFleetAccounts checks a fleet of SSMKIT_BENCH_ACCOUNTS accounts
// (default 10) of SSMKIT_BENCH_INSTANCES instances each (default 1,000,
// SSMKIT_BENCH_SCOPES accounts at once, default doctor.DefaultScopes, with
// SSMKIT_BENCH_CONCURRENCY calls each, default doctor.DefaultConcurrency;
// over 10 VPCs and 5 roles) like `doctor --all --role-arn …` (doctor.Multi:
// assume-role per account in the sandbox, whose view follows the caller's
// account), once over the first account and once over all of them, and
// prints calls and seconds for both. Targets (issue 11): 10 accounts ×
// 1,000 instances in under 60 s with fewer than 1,000 API calls.
//
//	go test -run '^$' -bench FleetAccounts -benchtime 1x -timeout 60m ./pkg/doctor/
func BenchmarkFleetAccounts(b *testing.B) {
	accounts, perAccount := envInt("SSMKIT_BENCH_ACCOUNTS", 10), envInt("SSMKIT_BENCH_INSTANCES", 1000)
	vpcs := min(10, perAccount)
	perVPC := perAccount / vpcs
	sb := sandboxtest.Start(b, sandbox.Options{Instances: []sandbox.InstanceSpec{}})
	base := sb.AWSConfig()
	setup := time.Now()
	var ids []string
	for i := range accounts {
		ids = append(ids, benchAccount(i))
		buildFleet(b, sb, assumeInto(b, base, benchAccount(i)), vpcs, 5, perVPC)
	}
	b.Logf("setup: %d accounts × %d instances in %s", accounts, vpcs*perVPC, time.Since(setup).Round(time.Second))

	// SSMKIT_BENCH_SCOPES=4,1 checks all accounts once with each.
	scopes := []int{0}
	if v := os.Getenv("SSMKIT_BENCH_SCOPES"); v != "" {
		scopes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				b.Fatalf("SSMKIT_BENCH_SCOPES=%q: want positive numbers separated by commas", v)
			}
			scopes = append(scopes, n)
		}
	}
	run := func(accts []string, scopes int) (calls int, secs float64, rep doctor.Report) {
		var cc awsapi.CallCounter
		var tm opTimer
		m := doctor.Multi{Base: base, RoleARN: "arn:aws:iam::000000000000:role/Audit", Accounts: accts, Scopes: scopes,
			Concurrency: envInt("SSMKIT_BENCH_CONCURRENCY", 0),
			Instrument:  func(c aws.Config) aws.Config { return tm.instrument(cc.Instrument(c)) }}
		start := time.Now()
		rep, err := m.Run(context.Background(), doctor.Selection{All: true}, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		secs = time.Since(start).Seconds()
		for _, a := range rep.Accounts {
			if len(a.Errors) > 0 || a.Instances != vpcs*perVPC {
				b.Fatalf("account %s: %d instances, errors %v", a.Account, a.Instances, a.Errors)
			}
		}
		counts := cc.Counts()
		ops := awsapi.SortedOps(counts)
		sort.Slice(ops, func(i, j int) bool { return tm.total(ops[i]) > tm.total(ops[j]) })
		fmt.Printf("fleet: %d account(s), %s at once, where the time goes:\n", len(accts), orDefaultScopes(scopes))
		for _, op := range ops {
			fmt.Printf("fleet:   %-36s %4d calls, %8s waiting in all\n", op, counts[op], tm.total(op).Round(time.Millisecond))
		}
		return cc.Total(), secs, rep
	}
	b.ResetTimer()
	for range b.N {
		c1, s1, _ := run(ids[:1], scopes[0])
		b.ReportMetric(float64(c1), "calls/1-account")
		b.ReportMetric(s1, "s/1-account")
		fmt.Printf("fleet: 1 account × %d instances: %d API calls, %.1f s\n", vpcs*perVPC, c1, s1)
		for k, sc := range scopes {
			cN, sN, rep := run(ids, sc)
			if k == 0 {
				b.ReportMetric(float64(cN), fmt.Sprintf("calls/%d-accounts", accounts))
				b.ReportMetric(sN, fmt.Sprintf("s/%d-accounts", accounts))
			}
			fmt.Printf("fleet: %d accounts × %d instances (%d checked), %s at once: %d API calls, %.1f s (%.2f× the calls, %.2f× the time of one account; targets: < 1000 calls, < 60 s)\n",
				accounts, vpcs*perVPC, rep.Summary.Instances, orDefaultScopes(sc), cN, sN, float64(cN)/float64(c1), sN/s1)
		}
	}
}

// orDefaultScopes says how many accounts Multi checks at once.
func orDefaultScopes(n int) string {
	if n <= 0 {
		n = doctor.DefaultScopes
	}
	return fmt.Sprintf("%d account(s)", n)
}
