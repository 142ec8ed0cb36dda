package doctor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"golang.org/x/sync/errgroup"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
)

// DefaultScopes is how many account/region pairs Multi checks at once
// (each with its own Concurrency of calls).
const DefaultScopes = 4

// OrganizationsAPI is the part of AWS Organizations Multi uses to list the
// accounts.
type OrganizationsAPI interface {
	ListAccounts(context.Context, *organizations.ListAccountsInput, ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error)
}

// ErrNoAccounts is returned when neither Accounts nor Organizations name
// an account to check.
var ErrNoAccounts = errors.New("no account to check")

// Multi checks the same selection in several accounts and regions and
// merges the results into one report with per-account totals. With a
// RoleARN it assumes that role in each account (the account field of the
// ARN is replaced by each account's ID); the accounts are Accounts, or
// every active account of the organization (Organizations ListAccounts
// with the base credentials). Without a RoleARN it checks the base
// credentials' own account in each region.
type Multi struct {
	// Base is the configuration of the caller (the organization's
	// management or a delegated administrator account, with a RoleARN).
	Base aws.Config
	// RoleARN is the role to assume in each account, e.g.
	// arn:aws:iam::111111111111:role/Audit ("" to use Base as it is).
	RoleARN string
	// Accounts to check; nil with a RoleARN lists the organization's.
	Accounts []string
	// Regions to check in each account; nil means Base.Region.
	Regions []string
	// Organizations lists accounts; nil builds a client from Base.
	Organizations OrganizationsAPI
	// Document, Concurrency: as in Gatherer.
	Document    string
	Concurrency int
	// Scopes bounds the account/region pairs checked at once
	// (DefaultScopes when zero).
	Scopes int
	// Instrument, when set, wraps every configuration used (API call
	// counting).
	Instrument func(aws.Config) aws.Config
	// OnScope, when set, is told each account/region pair as it finishes.
	OnScope func(account, region string, err error)
}

// scope is one account and region.
type scope struct {
	account, region string
	cfg             aws.Config
}

// Run checks sel in every account and region. A scope that cannot be
// checked (the role cannot be assumed, the instances cannot be listed) is
// reported in its account's summary and does not stop the others; only
// listing the accounts, or ctx ending, makes Run fail.
func (m Multi) Run(ctx context.Context, sel Selection, now func() time.Time) (Report, error) {
	base := m.Base
	if m.Instrument != nil {
		base = m.Instrument(base)
	}
	regions := m.Regions
	if len(regions) == 0 {
		regions = []string{base.Region}
	}
	scopes, err := m.scopes(ctx, base, regions)
	if err != nil {
		return Report{}, err
	}
	limit := m.Scopes
	if limit <= 0 {
		limit = DefaultScopes
	}
	var mu sync.Mutex
	var reports []InstanceReport
	errs := map[string][]string{}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(limit)
	for _, s := range scopes {
		eg.Go(func() error {
			g := &Gatherer{Clients: NewClients(s.cfg), Region: s.region, Document: m.Document, Concurrency: m.Concurrency}
			f, err := g.Gather(ectx, sel)
			if m.OnScope != nil {
				m.OnScope(s.account, s.region, err)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				mu.Lock()
				errs[s.account] = append(errs[s.account], fmt.Sprintf("%s: %s", s.region, shortErr(err)))
				mu.Unlock()
				return nil
			}
			r := Run(f, now())
			for i := range r.Instances {
				r.Instances[i].Account, r.Instances[i].Region = s.account, s.region
				if f.Account != "" {
					r.Instances[i].Account = f.Account
				}
			}
			mu.Lock()
			reports = append(reports, r.Instances...)
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return Report{}, err
	}
	rep := NewReport(reports)
	rep.Accounts = accountSummaries(scopes, regions, rep.Instances, errs)
	return rep, nil
}

// scopes builds the account/region pairs with their configurations: one
// credentials cache per account, shared by its regions.
func (m Multi) scopes(ctx context.Context, base aws.Config, regions []string) ([]scope, error) {
	if m.RoleARN == "" {
		if len(m.Accounts) > 0 {
			return nil, errors.New("checking other accounts needs a role to assume in them (--role-arn)")
		}
		var out []scope
		for _, r := range regions {
			cfg := base.Copy()
			cfg.Region = r
			out = append(out, scope{region: r, cfg: cfg})
		}
		return out, nil
	}
	role, err := arn.Parse(m.RoleARN)
	if err != nil || role.Service != "iam" {
		return nil, fmt.Errorf("--role-arn %q is not an IAM role ARN", m.RoleARN)
	}
	accounts := m.Accounts
	if len(accounts) == 0 {
		if accounts, err = m.orgAccounts(ctx, base); err != nil {
			return nil, err
		}
	}
	if len(accounts) == 0 {
		return nil, ErrNoAccounts
	}
	stsc := awsapi.NewSTS(base)
	var out []scope
	for _, acct := range accounts {
		r := role
		r.AccountID = acct
		creds := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc, r.String(), func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "ssmkit-doctor"
		}))
		for _, region := range regions {
			cfg := base.Copy()
			cfg.Region, cfg.Credentials = region, creds
			out = append(out, scope{account: acct, region: region, cfg: cfg})
		}
	}
	return out, nil
}

// orgAccounts lists the organization's active accounts.
func (m Multi) orgAccounts(ctx context.Context, base aws.Config) ([]string, error) {
	api := m.Organizations
	if api == nil {
		api = awsapi.NewOrganizations(base)
	}
	var out []string
	p := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the organization's accounts (or name them with --accounts): %w", err)
		}
		for _, a := range page.Accounts {
			if a.State == orgtypes.AccountStateActive || a.Status == orgtypes.AccountStatusActive {
				out = append(out, aws.ToString(a.Id))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// accountSummaries totals the report per account.
func accountSummaries(scopes []scope, regions []string, instances []InstanceReport, errs map[string][]string) []AccountSummary {
	byAccount := map[string]*AccountSummary{}
	var order []string
	add := func(acct string) *AccountSummary {
		a := byAccount[acct]
		if a == nil {
			a = &AccountSummary{Account: acct, Regions: regions}
			byAccount[acct] = a
			order = append(order, acct)
		}
		return a
	}
	for _, s := range scopes {
		add(s.account)
	}
	for _, ir := range instances {
		a := byAccount[ir.Account]
		if a == nil {
			// The base account, named by its caller identity.
			if a = byAccount[""]; a == nil {
				a = add(ir.Account)
			} else if a.Account == "" {
				a.Account = ir.Account
			}
		}
		a.Instances++
		if ir.Failed() {
			a.Failing++
		}
		for _, c := range ir.Checks {
			switch c.Status {
			case Fail:
				a.Fail++
			case Warn:
				a.Warn++
			}
		}
	}
	var out []AccountSummary
	for _, acct := range order {
		a := byAccount[acct]
		a.Errors = errs[acct]
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}
