package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// pingTimeout bounds status's call to the endpoint.
const pingTimeout = 5 * time.Second

// StatusOptions are the inputs of `ssmkit sandbox status`.
type StatusOptions struct {
	IO       *iostreams.IOStreams
	StateDir string
	JSON     bool
}

// statusJSON is what --json prints.
type statusJSON struct {
	Running  bool   `json:"running"`
	StateDir string `json:"state_dir"`
	*State
	// Reachable: the endpoint answered DescribeInstanceInformation.
	Reachable bool          `json:"reachable"`
	Error     string        `json:"error,omitempty"`
	Managed   []managedJSON `json:"managed,omitempty"`
}

type managedJSON struct {
	ID         string `json:"id"`
	PingStatus string `json:"ping_status"`
}

// NewCmdStatus returns the `sandbox status` command.
func NewCmdStatus(f *cmdutil.Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the sandbox runs, its endpoint and its instances",
		Long: "Show the running sandbox's endpoint, process and instances, with each instance's live\n" +
			"ping status from the endpoint (which also shows instances attached since start).\n" +
			"Exits 1 when no sandbox runs or its endpoint does not answer.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := resolveStateDir(opts.StateDir)
			if err != nil {
				return err
			}
			opts.StateDir = dir
			if f.Options.JSON() {
				opts.JSON = true
			}
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	stateDirFlag(cmd, &opts.StateDir)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "Print the status as JSON")
	return cmd
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	out := statusJSON{StateDir: opts.StateDir}
	st, err := liveState(opts.StateDir)
	if err != nil {
		if !errors.Is(err, errNotRunning) {
			return err
		}
		if opts.JSON {
			if err := cmdutil.PrintJSON(opts.IO, out); err != nil {
				return err
			}
			return cmdutil.SilentError
		}
		return fmt.Errorf("%w; start one with 'ssmkit sandbox up%s'", err, stateDirArg(opts.StateDir))
	}
	out.Running, out.State = true, st
	live, pingErr := ping(ctx, st)
	out.Reachable = pingErr == nil
	if pingErr != nil {
		out.Error = awsapi.Summarize(pingErr)
	}
	for id, s := range live {
		out.Managed = append(out.Managed, managedJSON{ID: id, PingStatus: s})
	}
	if opts.JSON {
		if err := cmdutil.PrintJSON(opts.IO, out); err != nil {
			return err
		}
		if pingErr != nil {
			return cmdutil.SilentError
		}
		return nil
	}
	cs := opts.IO.ColorScheme()
	w := opts.IO.ErrOut
	icon := cs.SuccessIcon()
	if pingErr != nil {
		icon = cs.FailureIcon()
	}
	fmt.Fprintf(w, "%s Sandbox at %s (pid %d, up %s, region %s)\n", icon, st.URL, st.PID, time.Since(st.StartedAt).Round(time.Second), st.Region)
	fmt.Fprintf(w, "  state %s, moto %s, auto-attach %t\n", opts.StateDir, st.MotoURL, st.AutoAttach)
	if st.CA != "" {
		fmt.Fprintf(w, "  TLS CA %s\n", st.CA)
	}
	if st.ProxyURL != "" {
		fmt.Fprintf(w, "  HTTPS proxy for *.amazonaws.com at %s\n", st.ProxyURL)
	}
	if pingErr != nil {
		fmt.Fprintf(w, "  the endpoint does not answer: %s\n", out.Error)
		if err := printInstances(opts.IO, st, nil); err != nil {
			return err
		}
		return cmdutil.SilentError
	}
	return printInstances(opts.IO, st, live)
}

// ping lists the managed instances through the endpoint: their ping
// status by id.
func ping(ctx context.Context, st *State) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range st.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	cfg := aws.Config{Region: st.Region, BaseEndpoint: aws.String(st.URL),
		Credentials: credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])}
	if st.CA != "" {
		pem, err := os.ReadFile(st.CA)
		if err != nil {
			return nil, fmt.Errorf("reading the sandbox CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the sandbox CA %s holds no certificate", st.CA)
		}
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	c := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	live := map[string]string{}
	p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("calling the sandbox at %s: %w", st.URL, err)
		}
		for _, i := range page.InstanceInformationList {
			live[aws.ToString(i.InstanceId)] = string(i.PingStatus)
		}
	}
	return live, nil
}
