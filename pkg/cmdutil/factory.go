// Package cmdutil holds what every ssmkit command shares: the Factory of
// lazily built dependencies, the errors that decide exit codes, and the
// JSON and table printers.
package cmdutil

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
)

// Factory carries the dependencies commands need. Its function fields are
// called only when a command runs, so building the command tree (for
// --help, completion or flag errors) never touches AWS.
//
// A command takes what it needs from the Factory into its own Options
// struct in NewCmdX, so that tests can replace each piece:
//
//	opts := &FooOptions{IO: f.IOStreams, AWSConfig: f.AWSConfig}
type Factory struct {
	// AppName is the executable's name as used in messages: "ssmkit".
	AppName string
	// AppVersion is the version of this build ("dev" when unset).
	AppVersion string

	// IOStreams are the process's streams.
	IOStreams *iostreams.IOStreams

	// Options holds the global flags. The root command binds its persistent
	// flags to these fields, so they are only meaningful once flags are
	// parsed: read them in RunE, not in NewCmdX.
	Options GlobalOptions

	// AWSConfig returns the AWS configuration for the global flags, loading
	// it on first use. Successful loads are memoized; see MemoizeAWSConfig.
	AWSConfig func(ctx context.Context) (aws.Config, error)

	// SessionClients returns the AWS clients sessions are opened with
	// (start, exec, forward, ssh, cp, plugin), built from AWSConfig on
	// first use; see SessionClientsLoader.
	SessionClients func(ctx context.Context) (session.Clients, error)

	// Redactor knows the secrets in play (credentials from the environment
	// and those resolved by the SDK). The root command passes every error
	// line through it; commands may Add secrets they obtain, such as
	// session tokens.
	Redactor *Redactor
}

// GlobalOptions are the values of the root command's persistent flags.
type GlobalOptions struct {
	// Profile is --profile: a shared config profile name.
	Profile string
	// Region is --region.
	Region string
	// EndpointURL is --endpoint-url: the base endpoint of every AWS client.
	EndpointURL string
	// Output is --output: table (the default) or json.
	Output OutputFormat
	// Debug is --debug: log each AWS call to stderr.
	Debug bool
	// NoColor is --no-color.
	NoColor bool
}

// JSON reports whether --output json was given.
func (o GlobalOptions) JSON() bool { return o.Output == OutputJSON }

// OutputFormat is the value of --output. It implements pflag.Value so that
// an unknown format is a usage error at parse time.
type OutputFormat string

// The output formats.
const (
	// OutputTable prints aligned columns on a terminal and tab-separated
	// columns otherwise. It is the default.
	OutputTable OutputFormat = "table"
	// OutputJSON prints indented JSON.
	OutputJSON OutputFormat = "json"
)

// OutputFormats lists the valid --output values, for help and completion.
var OutputFormats = []string{string(OutputTable), string(OutputJSON)}

// String returns the format, "table" when unset.
func (o *OutputFormat) String() string {
	if o == nil || *o == "" {
		return string(OutputTable)
	}
	return string(*o)
}

// Set validates and stores a format.
func (o *OutputFormat) Set(s string) error {
	switch f := OutputFormat(strings.ToLower(s)); f {
	case OutputTable, OutputJSON:
		*o = f
		return nil
	default:
		return fmt.Errorf("must be one of %s", strings.Join(OutputFormats, ", "))
	}
}

// Type names the flag's value in help output.
func (o *OutputFormat) Type() string { return "format" }

// MemoizeAWSConfig returns a function that calls load once and then returns
// its result. Failures are not memoized, so a cancelled first call does not
// poison later ones. Concurrent callers wait for the first load.
func MemoizeAWSConfig(load func(ctx context.Context) (aws.Config, error)) func(ctx context.Context) (aws.Config, error) {
	var (
		mu     sync.Mutex
		cfg    aws.Config
		loaded bool
	)
	return func(ctx context.Context) (aws.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		if loaded {
			return cfg, nil
		}
		c, err := load(ctx)
		if err != nil {
			return aws.Config{}, err
		}
		cfg, loaded = c, true
		return cfg, nil
	}
}

// SessionClientsLoader returns a function that builds the session clients
// from the configuration load returns (the Factory's AWSConfig) once, and
// then returns the same clients: one place builds them, lazily, for every
// session command.
func SessionClientsLoader(load func(ctx context.Context) (aws.Config, error)) func(ctx context.Context) (session.Clients, error) {
	var (
		mu      sync.Mutex
		clients session.Clients
		built   bool
	)
	return func(ctx context.Context) (session.Clients, error) {
		mu.Lock()
		defer mu.Unlock()
		if built {
			return clients, nil
		}
		cfg, err := load(ctx)
		if err != nil {
			return session.Clients{}, err
		}
		clients, built = session.NewClients(cfg), true
		return clients, nil
	}
}

// DebugLogf returns the function that --debug lines of the session layer
// go to ("debug: …" on standard error), or nil without --debug. Call it in
// RunE, once flags are parsed.
func (f *Factory) DebugLogf() func(format string, args ...any) {
	if !f.Options.Debug {
		return nil
	}
	w := f.IOStreams.ErrOut
	return func(format string, args ...any) {
		fmt.Fprintf(w, "debug: "+format+"\n", args...)
	}
}
