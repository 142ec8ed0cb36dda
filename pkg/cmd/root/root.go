// Package root builds the ssmkit command tree and runs it: global flags,
// command registration, and the mapping from errors to exit codes and
// one-line messages.
package root

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	cpCmd "github.com/ssmkit/ssmkit/pkg/cmd/cp"
	doctorCmd "github.com/ssmkit/ssmkit/pkg/cmd/doctor"
	execCmd "github.com/ssmkit/ssmkit/pkg/cmd/exec"
	forwardCmd "github.com/ssmkit/ssmkit/pkg/cmd/forward"
	logsCmd "github.com/ssmkit/ssmkit/pkg/cmd/logs"
	lsCmd "github.com/ssmkit/ssmkit/pkg/cmd/ls"
	pluginCmd "github.com/ssmkit/ssmkit/pkg/cmd/plugin"
	prefsCmd "github.com/ssmkit/ssmkit/pkg/cmd/prefs"
	sandboxCmd "github.com/ssmkit/ssmkit/pkg/cmd/sandbox"
	sessionsCmd "github.com/ssmkit/ssmkit/pkg/cmd/sessions"
	sshCmd "github.com/ssmkit/ssmkit/pkg/cmd/ssh"
	startCmd "github.com/ssmkit/ssmkit/pkg/cmd/start"
	versionCmd "github.com/ssmkit/ssmkit/pkg/cmd/version"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
)

// NewCmdRoot returns the root command with every subcommand registered.
// Adding a command is one import and one AddCommand line below.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	ios := f.IOStreams
	cmd := &cobra.Command{
		Use:   "ssmkit <command> [flags]",
		Short: "Work with AWS Systems Manager Session Manager",
		Long: "ssmkit opens shells, runs commands, forwards ports and diagnoses managed nodes\n" +
			"over AWS Systems Manager Session Manager, without the session-manager-plugin.\n\n" +
			"AWS settings come from the standard places (AWS_PROFILE, AWS_REGION,\n" +
			"AWS_ENDPOINT_URL[_<SERVICE>], ~/.aws/config, SSO); the flags below override them.",
		Example: "  ssmkit version --output json\n" +
			"  ssmkit completion bash > /etc/bash_completion.d/ssmkit",
		// Cobra prints "<name> version <Version>" for --version. A version
		// template would do the same through text/template, whose
		// reflective method calls make the linker keep every exported
		// method of every type stored in an interface: all ~800 EC2
		// operations and their serializers, 60 % of the binary, whose
		// tables then weigh on every command's start-up and RSS (issue 12).
		Version: strings.TrimPrefix(versionCmd.Current().String(), "ssmkit version "),
		// Main prints errors once, in its own format; cobra would print
		// them again with the whole usage text.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.SetIn(ios.In)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	// Inherited by every subcommand: any flag parse failure is a usage error.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cmdutil.FlagErrorWrap(err)
	})

	opts := &f.Options
	pf := cmd.PersistentFlags()
	pf.StringVar(&opts.Profile, "profile", "", "Use a profile from your AWS config files (overrides AWS_PROFILE)")
	pf.StringVar(&opts.Region, "region", "", "AWS region (overrides AWS_REGION and the profile)")
	pf.Var(&endpointURLValue{dst: &opts.EndpointURL}, "endpoint-url", "Base URL for every AWS API call, e.g. a local sandbox (overrides AWS_ENDPOINT_URL*)")
	pf.Var(&opts.Output, "output", "Output format: table or json")
	pf.BoolVar(&opts.Debug, "debug", false, "Log every AWS API call to stderr (never headers, bodies or secrets)")
	pf.BoolFunc("no-color", "Disable colour output (also NO_COLOR)", func(v string) error {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		if off {
			opts.NoColor = true
			ios.SetColorEnabled(false)
		}
		return nil
	})
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(cmdutil.OutputFormats, cobra.ShellCompDirectiveNoFileComp))

	// Commands. Those that move a session's bytes run with a lower GC goal
	// (memory.go).
	cmd.AddCommand(versionCmd.NewCmdVersion(f, nil))
	sessions := []*cobra.Command{
		startCmd.NewCmdStart(f, nil),
		execCmd.NewCmdExec(f, nil),
		forwardCmd.NewCmdForward(f, nil),
		sshCmd.NewCmdSSH(f, nil),
		cpCmd.NewCmdCp(f, nil),
		pluginCmd.NewCmdPlugin(f, nil),
	}
	for _, c := range sessions {
		withSessionMemory(c, os.Getenv)
		cmd.AddCommand(c)
	}
	cmd.AddCommand(doctorCmd.NewCmdDoctor(f, nil))
	cmd.AddCommand(sandboxCmd.NewCmdSandbox(f))
	cmd.AddCommand(prefsCmd.NewCmdPrefs(f))
	cmd.AddCommand(sessionsCmd.NewCmdSessions(f))
	cmd.AddCommand(logsCmd.NewCmdLogs(f, nil))
	cmd.AddCommand(lsCmd.NewCmdLs(f, nil))

	return cmd
}

// endpointURLValue validates --endpoint-url at parse time, so a typo is a
// usage error rather than a DNS failure later.
type endpointURLValue struct {
	dst *string
}

func (v *endpointURLValue) String() string { return *v.dst }

func (v *endpointURLValue) Type() string { return "url" }

func (v *endpointURLValue) Set(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL with a host")
	}
	*v.dst = s
	return nil
}
