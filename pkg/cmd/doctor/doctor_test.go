package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/doctor/local"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

func TestNewCmdDoctor(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		argv    []string // instead of args, for empty arguments
		json    bool
		want    DoctorOptions
		wantErr string
	}{
		{name: "targets", args: "i-1 web-1", want: DoctorOptions{Targets: []string{"i-1", "web-1"}, Document: doctor.DefaultDocument}},
		{name: "filters", args: "--filter tag:Env=prod --filter tag:Env=dev --stats", want: DoctorOptions{Filters: []string{"tag:Env=prod", "tag:Env=dev"}, Stats: true, Document: doctor.DefaultDocument}},
		{name: "all json", args: "--all", json: true, want: DoctorOptions{All: true, JSON: true, Document: doctor.DefaultDocument}},
		{name: "local", args: "--local --document Custom", want: DoctorOptions{Local: true, Document: "Custom"}},
		{name: "nothing", args: "", wantErr: "at least one target"},
		{name: "bad filter", args: "--filter Env=prod", wantErr: "tag:KEY=VALUE"},
		{name: "local with target", args: "--local i-1", wantErr: "--local"},
		{name: "all with target", args: "--all i-1", wantErr: "--all"},
		{name: "fix without a terminal refuses", args: "--fix i-1", wantErr: "add --yes"},
		{name: "fix with yes", args: "--fix --yes i-1", want: DoctorOptions{Targets: []string{"i-1"}, Fix: true, Yes: true, Document: doctor.DefaultDocument}},
		{name: "bad target", args: "tag:Env", wantErr: "tag:KEY=VALUE"},
		{name: "accounts and regions", args: "--all --regions us-east-1,eu-west-1 --role-arn arn:aws:iam::111111111111:role/Audit --accounts 111111111111,222222222222",
			want: DoctorOptions{All: true, Regions: []string{"us-east-1", "eu-west-1"}, RoleARN: "arn:aws:iam::111111111111:role/Audit",
				Accounts: []string{"111111111111", "222222222222"}, Document: doctor.DefaultDocument}},
		{name: "accounts with targets", args: "--role-arn arn:aws:iam::1:role/A i-1", wantErr: "use --all or --filter"},
		{name: "accounts without a role", args: "--all --accounts 111111111111", wantErr: "needs --role-arn"},
		{name: "bad role ARN", args: "--all --role-arn Audit", wantErr: "not an IAM role ARN"},
		{name: "bad account", args: "--all --role-arn arn:aws:iam::1:role/A --accounts 12", wantErr: "12-digit"},
		{name: "fix across regions", args: "--all --regions us-east-1 --fix --yes", wantErr: "one account and region"},
		{name: "yes without fix", args: "--yes i-1", wantErr: "--yes goes with --fix"},
		{name: "local fix", args: "--local --fix --yes", wantErr: "--local"},
		{name: "empty target", argv: []string{""}, wantErr: "the target must not be empty"},
		{name: "blank second target", argv: []string{"web-1", " "}, wantErr: "the target must not be empty (argument 2)"},
		{name: "empty document", argv: []string{"--document", "", "web-1"}, wantErr: "--document must not be empty"},
		{name: "empty role ARN", argv: []string{"--all", "--role-arn="}, wantErr: "--role-arn must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			if tt.json {
				f.Options.Output = cmdutil.OutputJSON
			}
			var got *DoctorOptions
			cmd := NewCmdDoctor(f, func(o *DoctorOptions) error { got = o; return nil })
			args := strings.Fields(tt.args)
			if tt.argv != nil {
				args = tt.argv
			}
			cmd.SetArgs(args)
			cmd.SetOut(ios.Out)
			cmd.SetErr(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				var fe *cmdutil.FlagError
				if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a FlagError with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Targets, ",") != strings.Join(tt.want.Targets, ",") || strings.Join(got.Filters, ",") != strings.Join(tt.want.Filters, ",") ||
				got.All != tt.want.All || got.JSON != tt.want.JSON || got.Stats != tt.want.Stats || got.Local != tt.want.Local || got.Document != tt.want.Document ||
				got.Fix != tt.want.Fix || got.Yes != tt.want.Yes || got.RoleARN != tt.want.RoleARN ||
				strings.Join(got.Regions, ",") != strings.Join(tt.want.Regions, ",") || strings.Join(got.Accounts, ",") != strings.Join(tt.want.Accounts, ",") {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestDoctorRunSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "web-1"}, {Name: "web-2", Offline: true}}})
	load := func(context.Context) (aws.Config, error) { return sb.AWSConfig(), nil }

	// Human output, one healthy target by Name tag: every check listed.
	ios, _, stdout, stderr := iostreams.Test()
	err := doctorRun(context.Background(), &DoctorOptions{IO: ios, AWSConfig: load, Targets: []string{"web-1"}, Document: doctor.DefaultDocument, Stats: true})
	if err != nil {
		t.Fatalf("healthy: %v\n%s", err, stdout)
	}
	out := stdout.String()
	for _, want := range []string{"(web-1)", "✓ instance.running", "✓ agent.online", "- caller.start-session: skipped", "1 instance checked, 0 failing"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "AWS API calls:") || !strings.Contains(stderr.String(), "EC2.DescribeInstances") {
		t.Errorf("--stats: %q", stderr)
	}

	// Both targets: a failure, exit 1 through SilentError, To fix lines.
	ios, _, stdout, _ = iostreams.Test()
	err = doctorRun(context.Background(), &DoctorOptions{IO: ios, AWSConfig: load, Targets: []string{"web-1", "web-2", "i-00000000000000000"}, Document: doctor.DefaultDocument})
	if !errors.Is(err, cmdutil.SilentError) {
		t.Fatalf("err = %v, want SilentError", err)
	}
	out = stdout.String()
	for _, want := range []string{"X agent.online", "To fix:", "X instance.running: no EC2 instance", "3 instances checked, 2 failing"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// JSON follows the documented schema.
	ios, _, stdout, _ = iostreams.Test()
	err = doctorRun(context.Background(), &DoctorOptions{IO: ios, AWSConfig: load, Filters: []string{"tag:ssmkit:sandbox=true"}, JSON: true, Stats: true, Document: doctor.DefaultDocument})
	if !errors.Is(err, cmdutil.SilentError) {
		t.Fatalf("err = %v", err)
	}
	var rep struct {
		Instances []struct {
			ID, Name string
			Checks   []struct{ ID, Status, Summary, Fix string }
		}
		Summary struct{ Instances, Failing, Pass, Warn, Fail, Skip int }
		Calls   map[string]int `json:"api_calls"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if rep.Summary.Instances != 2 || rep.Summary.Failing != 1 || len(rep.Calls) == 0 {
		t.Errorf("summary %+v calls %v", rep.Summary, rep.Calls)
	}
	for _, in := range rep.Instances {
		if len(in.Checks) != len(doctor.CheckIDs) {
			t.Errorf("%s has %d checks", in.ID, len(in.Checks))
		}
	}
}

func TestDoctorRunLocal(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	p := &local.Prober{IMDSEndpoint: "http://127.0.0.1:1", IMDSTimeout: 200e6, Timeout: 200e6,
		AgentStatus:  func(context.Context) (bool, string, error) { return true, "test", nil },
		AgentVersion: func(context.Context) (string, error) { return "3.3.1142.0", nil },
		Getenv:       func(string) string { return "" }, AgentDir: t.TempDir()}
	err := doctorRun(context.Background(), &DoctorOptions{IO: ios, Local: true, Prober: p, JSON: true})
	if !errors.Is(err, cmdutil.SilentError) {
		t.Fatalf("err = %v (IMDS is unreachable: a failure)", err)
	}
	var rep doctor.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Instances) != 1 || rep.Instances[0].ID != "local" || rep.Instances[0].Checks[0].ID != "local.imds" || rep.Instances[0].Checks[0].Status != doctor.Fail {
		t.Errorf("report %+v", rep)
	}
}
