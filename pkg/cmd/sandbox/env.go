package sandbox

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// EnvOptions are the inputs of `ssmkit sandbox env`.
type EnvOptions struct {
	IO       *iostreams.IOStreams
	StateDir string
}

// NewCmdEnv returns the `sandbox env` command.
func NewCmdEnv(f *cmdutil.Factory, runF func(*EnvOptions) error) *cobra.Command {
	opts := &EnvOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print the environment that points AWS clients at the sandbox",
		Long: "Print export lines for a POSIX shell: AWS_ENDPOINT_URL, the region and this run's\n" +
			"credentials (random per 'up'; every request must be signed with them), with a --tls or\n" +
			"--proxy sandbox AWS_CA_BUNDLE and SSL_CERT_FILE for its CA, and with a --proxy sandbox\n" +
			"HTTPS_PROXY (and NO_PROXY for loopback), so tools that ignore AWS_ENDPOINT_URL reach it too.\n" +
			"A --tls sandbox also writes a configuration for a real SSM Agent to its state\n" +
			"directory; the output names it in a comment.",
		Example: "  eval \"$(ssmkit sandbox env)\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := resolveStateDir(opts.StateDir)
			if err != nil {
				return err
			}
			opts.StateDir = dir
			if runF != nil {
				return runF(opts)
			}
			return envRun(opts)
		},
	}
	stateDirFlag(cmd, &opts.StateDir)
	return cmd
}

func envRun(opts *EnvOptions) error {
	st, err := liveState(opts.StateDir)
	if err != nil {
		return fmt.Errorf("%w; start one with 'ssmkit sandbox up%s'", err, stateDirArg(opts.StateDir))
	}
	var b strings.Builder
	for _, kv := range st.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	if st.AgentConfig != "" {
		fmt.Fprintf(&b, "# A real SSM Agent: use %s as /etc/amazon/ssm/amazon-ssm-agent.json\n", st.AgentConfig)
		b.WriteString("# (or as configuration/amazon-ssm-agent.json next to a locally built agent; copy it again after every 'up')\n")
		b.WriteString("# and start it with the variables above (its websocket trusts SSL_CERT_FILE, its SDK AWS_CA_BUNDLE).\n")
		fmt.Fprintf(&b, "export SSMKIT_SANDBOX_AGENT_CONFIG=%s\n", shellQuote(st.AgentConfig))
	}
	_, err = fmt.Fprint(opts.IO.Out, b.String())
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
