package doctor

import "sort"

// Status is the outcome of one check.
type Status string

// The statuses, in the order the summary counts them.
const (
	// Pass: the check found nothing wrong.
	Pass Status = "pass"
	// Warn: not a reason for sessions to fail now, but worth fixing.
	Warn Status = "warn"
	// Fail: sessions to this target fail (or will) until it is fixed.
	Fail Status = "fail"
	// Skip: the check could not run or does not apply; Summary says why.
	Skip Status = "skip"
)

// Check is the result of one check for one target. Its JSON form is part of
// the documented, stable schema (see doc.go).
type Check struct {
	// ID is the check's stable identifier, e.g. "network.route".
	ID string `json:"id"`
	// Status is pass, warn, fail or skip.
	Status Status `json:"status"`
	// Summary is one human sentence: what was found, or why it was skipped.
	Summary string `json:"summary"`
	// Evidence lists the facts the decision rests on ("route 0.0.0.0/0 →
	// igw-…", "PingStatus=ConnectionLost").
	Evidence []string `json:"evidence,omitempty"`
	// Fix says how to fix a warn or fail, as one line of text: the
	// commands joined with " && ", then any alternative (a Terraform
	// module and variable) or advice.
	Fix string `json:"fix,omitempty"`
	// Commands are the command lines of Fix, each one `aws …` or
	// `ssmkit …` for a POSIX shell, in order. They name real resources
	// (never placeholders) and `doctor --fix` runs them through the SDK.
	Commands []string `json:"fix_commands,omitempty"`
}

// InstanceReport holds the checks for one target.
type InstanceReport struct {
	// ID is the instance or managed node ID (or the target as given, when
	// it matched nothing).
	ID string `json:"id"`
	// Name is the Name tag, if any.
	Name string `json:"name,omitempty"`
	// Account and Region say where the target is, in reports over several
	// accounts or regions (doctor --regions, --role-arn).
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Checks are in a fixed order (see CheckIDs).
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r InstanceReport) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Summary counts instances and checks.
type Summary struct {
	// Instances is the number of targets checked.
	Instances int `json:"instances"`
	// Failing is the number of targets with at least one failed check.
	Failing int `json:"failing"`
	// Pass, Warn, Fail and Skip count checks over every target.
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Report is what `ssmkit doctor --json` prints.
type Report struct {
	// Instances are sorted by ID.
	Instances []InstanceReport `json:"instances"`
	// Summary counts over all instances.
	Summary Summary `json:"summary"`
	// Calls counts AWS API calls per "Service.Operation" (only with --stats).
	Calls map[string]int `json:"api_calls,omitempty"`
	// Accounts are the per-account totals of a report over several
	// accounts or regions.
	Accounts []AccountSummary `json:"accounts,omitempty"`
}

// AccountSummary totals one account's part of a report.
type AccountSummary struct {
	Account string   `json:"account"`
	Regions []string `json:"regions"`
	// Instances and Failing count targets; Fail and Warn count checks.
	Instances int `json:"instances"`
	Failing   int `json:"failing"`
	Fail      int `json:"fail"`
	Warn      int `json:"warn"`
	// Errors say why a region of the account could not be checked (the
	// role could not be assumed, the instances could not be listed).
	Errors []string `json:"errors,omitempty"`
}

// NewReport sorts the instance reports (by account, region and ID) and
// computes the summary.
func NewReport(instances []InstanceReport) Report {
	sort.SliceStable(instances, func(i, j int) bool {
		a, b := instances[i], instances[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.ID < b.ID
	})
	r := Report{Instances: instances}
	if r.Instances == nil {
		r.Instances = []InstanceReport{}
	}
	r.Summary.Instances = len(instances)
	for _, ir := range instances {
		if ir.Failed() {
			r.Summary.Failing++
		}
		for _, c := range ir.Checks {
			switch c.Status {
			case Pass:
				r.Summary.Pass++
			case Warn:
				r.Summary.Warn++
			case Fail:
				r.Summary.Fail++
			case Skip:
				r.Summary.Skip++
			}
		}
	}
	return r
}

// Failed reports whether any check of any target failed, or an account
// or region could not be checked.
func (r Report) Failed() bool {
	for _, a := range r.Accounts {
		if len(a.Errors) > 0 {
			return true
		}
	}
	return r.Summary.Fail > 0
}
