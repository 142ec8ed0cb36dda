// Package doctor implements `ssmkit doctor`: say why a managed node cannot
// be reached, and how to fix it, for one instance or a fleet; with --local,
// from inside the instance.
package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/ssmkit/ssmkit/pkg/target"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/doctor/local"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// DoctorOptions are the inputs of `ssmkit doctor`.
type DoctorOptions struct {
	IO *iostreams.IOStreams
	// AWSConfig loads the AWS configuration (not needed with --local).
	AWSConfig func(ctx context.Context) (aws.Config, error)
	// Prober runs --local; nil means the real instance.
	Prober *local.Prober
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	Targets  []string
	Filters  []string
	All      bool
	JSON     bool
	Stats    bool
	Local    bool
	Document string
	Region   string
	// Fix runs the failing checks' fix commands (after asking, unless Yes).
	Fix bool
	Yes bool
	// Fixer runs fix commands; nil means doctor.NewFixer (the SDK).
	Fixer Fixer
	// Regions, Accounts and RoleARN check several regions and accounts
	// (see doctor.Multi).
	Regions  []string
	Accounts []string
	RoleARN  string
}

// multi reports whether the run spans several accounts or regions.
func (o *DoctorOptions) multi() bool {
	return len(o.Regions) > 0 || len(o.Accounts) > 0 || o.RoleARN != ""
}

// NewCmdDoctor returns the `doctor` command. runF replaces the run function
// in tests.
func NewCmdDoctor(f *cmdutil.Factory, runF func(*DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "doctor [<target>...] [--filter tag:KEY=VALUE] [--all] [--fix] | --local",
		Short: "Say why a managed node cannot be reached, and how to fix it",
		Long: "Check everything a Session Manager session depends on: the instance and its SSM Agent,\n" +
			"the instance role, the network path to the Systems Manager endpoints, the session\n" +
			"preferences, logging and KMS, and your own permissions. Each failure comes with the\n" +
			"command or Terraform variable that fixes it.\n\n" +
			"Targets are what `ssmkit start` takes: instance and managed node IDs, ARNs, Name tags,\n" +
			"hybrid computer names, tag:KEY=VALUE, private IPs and DNS names, and name patterns\n" +
			"(every match is checked). Facts are gathered once per VPC, role and page, so a whole\n" +
			"fleet costs a few dozen API calls (see --stats).\n\n" +
			"With --local, run on the instance itself: IMDS, the agent, DNS, TLS to the endpoints,\n" +
			"proxy, role credentials, clock and disk. No AWS credentials are needed.\n\n" +
			"With --regions, --role-arn and --accounts, a fleet (--all or --filter) is checked in\n" +
			"several regions and accounts: the role is assumed in each account (the account of the\n" +
			"ARN is replaced by each account's ID), the accounts are --accounts or every active\n" +
			"account of the organization (Organizations ListAccounts), and one report ends with\n" +
			"totals per account.\n\n" +
			"With --fix, the fix commands of the failing checks are shown, confirmed once on the\n" +
			"terminal (--yes for scripts) and run through the AWS API in order — never through a\n" +
			"shell, and nothing the report did not name — then everything is checked again and\n" +
			"what changed is printed.\n\n" +
			"Exit status: 0 when nothing fails, 1 when a check fails, 2 on usage errors.",
		Example: "  ssmkit doctor i-0123456789abcdef0\n" +
			"  ssmkit doctor web-1 web-2 --json\n" +
			"  ssmkit doctor --filter tag:Env=prod --stats\n" +
			"  ssmkit doctor web-1 --fix\n" +
			"  ssmkit doctor --all --regions us-east-1,eu-west-1 --role-arn arn:aws:iam::111111111111:role/Audit\n" +
			"  sudo ssmkit doctor --local",
		Args: cmdutil.NonEmptyArgs(cobra.ArbitraryArgs, "the target"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NonEmptyFlags(cmd, "document", "role-arn"); err != nil {
				return err
			}
			opts.Targets = args
			if f.Options.JSON() {
				opts.JSON = true
			}
			if opts.Region == "" {
				opts.Region = f.Options.Region
			}
			if err := validate(opts); err != nil {
				return err
			}
			if opts.AWSConfig == nil {
				opts.AWSConfig = f.AWSConfig
			}
			if runF != nil {
				return runF(opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Filters, "filter", nil, "Check instances with this tag: tag:KEY=VALUE (repeatable; all must match)")
	fl.BoolVar(&opts.All, "all", false, "Check every instance in the region that is not terminated")
	fl.BoolVar(&opts.JSON, "json", false, "Print the report as JSON (schema: pkg/doctor/doc.go)")
	fl.BoolVar(&opts.Stats, "stats", false, "Print the number of AWS API calls per operation")
	fl.BoolVar(&opts.Local, "local", false, "Run the checks on this instance instead of through the AWS APIs")
	fl.StringVar(&opts.Document, "document", doctor.DefaultDocument, "Session document holding the preferences to check")
	fl.BoolVar(&opts.Fix, "fix", false, "Run the fix commands of the failing checks through the AWS API (shows them and asks first), then check again")
	fl.BoolVar(&opts.Yes, "yes", false, "With --fix: run the fixes without asking (for scripts)")
	fl.StringSliceVar(&opts.Regions, "regions", nil, "Check these regions (comma-separated) instead of the configured one")
	fl.StringVar(&opts.RoleARN, "role-arn", "", "Assume this role in each account (its account ID is replaced by each account's) and check them all")
	fl.StringSliceVar(&opts.Accounts, "accounts", nil, "With --role-arn: the account IDs to check (default: every active account of the organization)")
	return cmd
}

func validate(opts *DoctorOptions) error {
	if opts.Local {
		if len(opts.Targets) > 0 || len(opts.Filters) > 0 || opts.All || opts.Fix {
			return cmdutil.FlagErrorf("--local checks this instance: it takes no targets, --filter, --all or --fix")
		}
		return nil
	}
	if opts.Yes && !opts.Fix {
		return cmdutil.FlagErrorf("--yes goes with --fix")
	}
	if opts.Fix && !opts.Yes && !(opts.IO.IsStdinTTY() && opts.IO.IsStderrTTY()) {
		return cmdutil.FlagErrorf("--fix asks before it changes anything, which needs a terminal: add --yes to run the fixes without asking")
	}
	if len(opts.Targets) == 0 && len(opts.Filters) == 0 && !opts.All {
		return cmdutil.FlagErrorf("name at least one target, or use --filter tag:KEY=VALUE, --all or --local")
	}
	if opts.All && len(opts.Targets) > 0 {
		return cmdutil.FlagErrorf("--all cannot be combined with targets")
	}
	for _, t := range opts.Targets {
		if _, err := target.Parse(t); err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	if opts.multi() {
		switch {
		case len(opts.Targets) > 0:
			return cmdutil.FlagErrorf("--regions, --accounts and --role-arn check fleets: use --all or --filter instead of targets")
		case opts.Fix:
			return cmdutil.FlagErrorf("--fix works in one account and region at a time")
		case len(opts.Accounts) > 0 && opts.RoleARN == "":
			return cmdutil.FlagErrorf("--accounts needs --role-arn: the role to assume in each account")
		}
		if opts.RoleARN != "" {
			if a, err := arn.Parse(opts.RoleARN); err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") {
				return cmdutil.FlagErrorf("--role-arn %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", opts.RoleARN)
			}
		}
		for _, a := range opts.Accounts {
			if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
				return cmdutil.FlagErrorf("--accounts: %q is not a 12-digit account ID", a)
			}
		}
		for _, r := range opts.Regions {
			if r == "" || strings.ContainsAny(r, " /:") {
				return cmdutil.FlagErrorf("--regions: %q is not a region name", r)
			}
		}
	}
	_, err := parseFilters(opts.Filters)
	return err
}

func parseFilters(filters []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, f := range filters {
		kv, ok := strings.CutPrefix(f, "tag:")
		k, v, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 || k == "" {
			return nil, cmdutil.FlagErrorf("--filter %q is not tag:KEY=VALUE", f)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

func doctorRun(ctx context.Context, opts *DoctorOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.Local {
		p := opts.Prober
		if p == nil {
			p = &local.Prober{Region: opts.Region}
		}
		res := p.Run(ctx)
		id := res.InstanceID
		if id == "" {
			id = "local"
		}
		return finish(opts, doctor.NewReport([]doctor.InstanceReport{{ID: id, Name: "this instance", Checks: res.Checks}}), nil)
	}
	cfg, err := opts.AWSConfig(ctx)
	if err != nil {
		return err
	}
	var counter awsapi.CallCounter
	tags, _ := parseFilters(opts.Filters)
	if opts.multi() {
		progress := opts.IO.StartProgress("checking accounts and regions", 0)
		m := doctor.Multi{Base: cfg, RoleARN: opts.RoleARN, Accounts: opts.Accounts, Regions: opts.Regions,
			Document: opts.Document, Instrument: counter.Instrument}
		report, err := m.Run(ctx, doctor.Selection{Tags: tags, All: opts.All}, now)
		progress.Stop()
		if err != nil {
			return err
		}
		if opts.Stats {
			report.Calls = counter.Counts()
		}
		return finish(opts, report, &counter)
	}
	cfg = counter.Instrument(cfg)
	check := func(label string) (doctor.Report, error) {
		progress := opts.IO.StartProgress(label, 0)
		defer progress.Stop()
		g := &doctor.Gatherer{Clients: doctor.NewClients(cfg), Region: cfg.Region, Document: opts.Document}
		facts, err := g.Gather(ctx, doctor.Selection{Targets: opts.Targets, Tags: tags, All: opts.All})
		if err != nil {
			return doctor.Report{}, err
		}
		return doctor.Run(facts, now()), nil
	}
	report, err := check("gathering facts")
	if err != nil {
		return err
	}
	if opts.Fix {
		if !opts.JSON {
			printReport(opts.IO, report)
		}
		report, err = fixRun(ctx, opts, cfg, report, func() (doctor.Report, error) { return check("checking again") })
		if err != nil {
			return err
		}
		if !opts.JSON {
			fmt.Fprintln(opts.IO.Out)
		}
	}
	if opts.Stats {
		report.Calls = counter.Counts()
	}
	return finish(opts, report, &counter)
}

// finish prints the report and turns failures into exit status 1.
func finish(opts *DoctorOptions, report doctor.Report, counter *awsapi.CallCounter) error {
	if opts.JSON {
		if err := cmdutil.PrintJSON(opts.IO, report); err != nil {
			return err
		}
	} else {
		printReport(opts.IO, report)
	}
	if opts.Stats && counter != nil && !opts.JSON {
		printStats(opts.IO.ErrOut, counter)
	}
	if report.Failed() {
		return cmdutil.SilentError
	}
	return nil
}

// printReport prints the gh-auth-status style report: a header per target,
// then one line per check. With one target every check is shown; with more,
// passing and skipped checks are counted but not listed.
func printReport(io *iostreams.IOStreams, r doctor.Report) {
	cs := io.ColorScheme()
	out := io.Out
	verbose := len(r.Instances) == 1
	if len(r.Instances) == 0 {
		fmt.Fprintln(out, "No instances matched.")
	}
	for _, inst := range r.Instances {
		header := inst.ID
		if inst.Name != "" {
			header += " (" + inst.Name + ")"
		}
		if inst.Account != "" || inst.Region != "" {
			header += cs.Gray(" " + strings.TrimSpace(inst.Account+" "+inst.Region))
		}
		fmt.Fprintln(out, cs.Bold(header))
		hidden := 0
		for _, c := range inst.Checks {
			var icon string
			switch c.Status {
			case doctor.Pass:
				icon = cs.SuccessIcon()
			case doctor.Warn:
				icon = cs.WarningIcon()
			case doctor.Fail:
				icon = cs.FailureIcon()
			default:
				icon = cs.Gray("-")
			}
			if !verbose && (c.Status == doctor.Pass || c.Status == doctor.Skip) {
				hidden++
				continue
			}
			line := fmt.Sprintf("  %s %s: %s", icon, c.ID, c.Summary)
			if c.Status == doctor.Skip {
				line = fmt.Sprintf("  %s %s", icon, cs.Gray(c.ID+": skipped: "+c.Summary))
			}
			fmt.Fprintln(out, line)
			if c.Status == doctor.Fail || c.Status == doctor.Warn {
				for _, e := range c.Evidence {
					fmt.Fprintf(out, "      %s\n", cs.Gray(e))
				}
				switch {
				case len(c.Commands) > 0:
					fmt.Fprintln(out, "    To fix, run:")
					for _, line := range c.Commands {
						fmt.Fprintf(out, "      %s\n", line)
					}
					if note := c.FixNote(); note != "" {
						fmt.Fprintf(out, "    Or: %s\n", strings.TrimPrefix(note, "or "))
					}
				case c.Fix != "":
					fmt.Fprintf(out, "    To fix: %s\n", c.Fix)
				}
			}
		}
		if hidden > 0 {
			fmt.Fprintf(out, "  %s\n", cs.Gray(fmt.Sprintf("%d checks passed or did not apply", hidden)))
		}
		fmt.Fprintln(out)
	}
	if len(r.Accounts) > 0 {
		fmt.Fprintln(out, cs.Bold("Per account"))
		tp := cmdutil.NewTablePrinter(io)
		tp.SetHeader("ACCOUNT", "REGIONS", "INSTANCES", "FAILING", "FAILED CHECKS", "WARNINGS", "ERRORS")
		for _, a := range r.Accounts {
			tp.AddRow(orDash(a.Account), strings.Join(a.Regions, ","), fmt.Sprint(a.Instances), fmt.Sprint(a.Failing),
				fmt.Sprint(a.Fail), fmt.Sprint(a.Warn), orDash(strings.Join(a.Errors, "; ")))
		}
		_ = tp.Render()
		fmt.Fprintln(out)
	}
	s := r.Summary
	fmt.Fprintf(out, "%d %s checked, %d failing: %d passed, %d warnings, %d failed, %d skipped\n",
		s.Instances, plural(s.Instances, "instance"), s.Failing, s.Pass, s.Warn, s.Fail, s.Skip)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func printStats(w io.Writer, c *awsapi.CallCounter) {
	counts := c.Counts()
	fmt.Fprintf(w, "AWS API calls: %d\n", c.Total())
	for _, op := range awsapi.SortedOps(counts) {
		fmt.Fprintf(w, "  %-45s %d\n", op, counts[op])
	}
}
