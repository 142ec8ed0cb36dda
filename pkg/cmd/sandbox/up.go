package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
)

// DefaultInstances is how many healthy instances `up` creates when neither
// --instances nor --instance is given.
const DefaultInstances = 3

// readyTimeout bounds how long `up` waits for the serve process.
const readyTimeout = 2 * time.Minute

// UpOptions are the inputs of `ssmkit sandbox up` and `serve`.
type UpOptions struct {
	IO *iostreams.IOStreams
	// Executable is the ssmkit binary `up` re-executes (os.Executable).
	Executable func() (string, error)

	// StateDir is --state-dir, resolved to an absolute path.
	StateDir string
	// Healthy is --instances: healthy instances named web-1…web-N.
	Healthy int
	// Specs are the --instance values, in order.
	Specs []sandbox.InstanceSpec
	// AgentVersion is --agent-version: the version of agents without their
	// own version= option.
	AgentVersion string
	MotoURL      string
	TLS          bool
	Port         int
	AutoAttach   bool
	Foreground   bool
	// LegacyNonInteractive is --legacy-noninteractive-document.
	LegacyNonInteractive bool
	// MaxRequestBody is --max-request-body in bytes (0: the default).
	MaxRequestBody int64
	// Proxy is --proxy: the intercepting HTTPS proxy.
	Proxy bool
	// AgentRealism is --agent-realism.
	AgentRealism bool
}

// instances returns every instance to create: web-1…web-N, then Specs.
func (o *UpOptions) instances() []sandbox.InstanceSpec {
	out := make([]sandbox.InstanceSpec, 0, o.Healthy+len(o.Specs))
	for i := 1; i <= o.Healthy; i++ {
		out = append(out, sandbox.InstanceSpec{Name: "web-" + strconv.Itoa(i)})
	}
	out = append(out, o.Specs...)
	for i := range out {
		if out[i].AgentVersion == "" {
			out[i].AgentVersion = o.AgentVersion
		}
	}
	return out
}

// serveArgs are the arguments of the `sandbox serve` process `up` starts.
func (o *UpOptions) serveArgs(specs []string) []string {
	args := []string{"sandbox", "serve", "--state-dir", o.StateDir,
		"--instances", strconv.Itoa(o.Healthy), "--port", strconv.Itoa(o.Port),
		"--auto-attach=" + strconv.FormatBool(o.AutoAttach), "--tls=" + strconv.FormatBool(o.TLS)}
	if o.AgentVersion != "" {
		args = append(args, "--agent-version", o.AgentVersion)
	}
	if o.MotoURL != "" {
		args = append(args, "--moto-url", o.MotoURL)
	}
	if o.LegacyNonInteractive {
		args = append(args, "--legacy-noninteractive-document")
	}
	if o.Proxy {
		args = append(args, "--proxy")
	}
	if o.AgentRealism {
		args = append(args, "--agent-realism")
	}
	if o.MaxRequestBody != 0 {
		args = append(args, "--max-request-body", strconv.FormatInt(o.MaxRequestBody, 10))
	}
	for _, s := range specs {
		args = append(args, "--instance", s)
	}
	return args
}

// NewCmdUp returns the `sandbox up` command. runF replaces the run
// function in tests.
func NewCmdUp(f *cmdutil.Factory, runF func(*UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: f.IOStreams, Executable: os.Executable}
	var specs []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the sandbox in the background",
		Long: "Start the sandbox: a moto server (unless --moto-url), the loopback endpoint and the\n" +
			"instances with their emulated agents. It runs in the background until `ssmkit sandbox\n" +
			"down` (or in the foreground until Ctrl-C with --foreground), and prints the instances\n" +
			"once every agent is connected.\n\n" +
			"--instance name[:opt,...] adds an instance; its options make it broken on purpose:\n" +
			"  offline              registered once, its agent is not running (ConnectionLost)\n" +
			"  no-role              no instance profile: never registers\n" +
			"  isolated             in a subnet with neither a NAT route nor endpoints: never registers\n" +
			"  version=X.Y.Z.W      the agent version it reports (old versions use basic port mode)\n" +
			"  hybrid               an on-premises node: an activation and an mi- node registered with it\n" +
			"                       (computer name, address, the activation's role), no EC2 instance\n" +
			"  tag=KEY=VALUE        an EC2 tag (repeatable)\n\n" +
			"With --auto-attach (the default) any EC2 instance launched through the sandbox's API\n" +
			"(Terraform, the AWS CLI) gets an emulated agent as soon as a real one could register:\n" +
			"running, an instance profile allowing the core SSM actions, and a NAT/internet route or\n" +
			"the ssm, ssmmessages and ec2messages endpoints in its VPC. Its agent reports the version in\n" +
			"the instance's ssmkit:agent-version tag, else --agent-version.\n\n" +
			"--proxy starts an intercepting HTTPS proxy on a second loopback port for clients that ignore\n" +
			"endpoint settings (the official plugin's KMS calls, older SDKs): with HTTPS_PROXY from\n" +
			"'sandbox env' their calls to *.amazonaws.com are answered by the sandbox (certificates from\n" +
			"its CA); every other destination is refused with 403 and the reason.\n\n" +
			"Who can use it: every request must be SigV4-signed with the random credentials of this run\n" +
			"(`ssmkit sandbox env` prints them; the state file holding them is readable by you only), or\n" +
			"with credentials minted through the sandbox (STS, IAM CreateAccessKey). Data and control\n" +
			"channels need the token the sandbox issued for them.\n\n" +
			"A sandbox shell runs as YOU: the emulated agents start shells and commands as the user\n" +
			"running the sandbox (a real agent runs as root and uses ssm-user). RunAs is honoured when\n" +
			"the session preferences enable it and the sandbox runs as root.",
		Example: "  ssmkit sandbox up\n" +
			"  ssmkit sandbox up --instances 1 --instance old:version=3.0.161.0 --instance lost:offline\n" +
			"  ssmkit sandbox up --tls --port 8443 --foreground",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.complete(cmd, specs); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.Foreground {
				return serveRun(cmd.Context(), opts, true)
			}
			return upRun(cmd.Context(), opts, specs)
		},
	}
	upFlags(cmd, opts, &specs)
	cmd.Flags().BoolVar(&opts.Foreground, "foreground", false, "Run in this process until Ctrl-C")
	return cmd
}

// NewCmdServe returns the hidden `sandbox serve` command that `up` runs
// in the background.
func NewCmdServe(f *cmdutil.Factory, runF func(*UpOptions) error) *cobra.Command {
	opts := &UpOptions{IO: f.IOStreams}
	var specs []string
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run the sandbox until SIGTERM (started by `up`)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.complete(cmd, specs); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return serveRun(cmd.Context(), opts, false)
		},
	}
	upFlags(cmd, opts, &specs)
	return cmd
}

func upFlags(cmd *cobra.Command, opts *UpOptions, specs *[]string) {
	fl := cmd.Flags()
	fl.IntVar(&opts.Healthy, "instances", DefaultInstances, "Number of healthy instances (web-1…web-N); 0 when only --instance is given")
	fl.StringArrayVar(specs, "instance", nil, "Add an instance: name[:offline,no-role,isolated,hybrid,version=X.Y.Z.W,tag=K=V] (repeatable)")
	fl.StringVar(&opts.AgentVersion, "agent-version", "", "Agent version of instances without version= and of auto-attached instances without an ssmkit:agent-version tag (default the current agent's)")
	fl.StringVar(&opts.MotoURL, "moto-url", "", "Use this running moto server instead of starting one")
	fl.BoolVar(&opts.TLS, "tls", false, "Serve https/wss with a local CA (needed by a real SSM Agent)")
	fl.IntVar(&opts.Port, "port", 0, "Loopback port of the endpoint (default: a free one)")
	fl.BoolVar(&opts.AutoAttach, "auto-attach", true, "Attach an emulated agent to instances launched through the sandbox once they could register")
	fl.BoolVar(&opts.AgentRealism, "agent-realism", false, "Emulated agents wait 1 s before a shell's first output, as the real agent does")
	fl.BoolVar(&opts.Proxy, "proxy", false, "Also serve AWS's real host names (*.amazonaws.com) through an HTTPS proxy; 'sandbox env' then exports HTTPS_PROXY")
	fl.Int64Var(&opts.MaxRequestBody, "max-request-body", 0, "Largest request body in bytes the endpoint accepts and passes to moto (default 32 MiB)")
	fl.BoolVar(&opts.LegacyNonInteractive, "legacy-noninteractive-document", false,
		"Serve AWS-StartNonInteractiveCommand without its separate-output parameters, as AWS may (StartSession with them fails with InvalidParameters)")
	stateDirFlag(cmd, &opts.StateDir)
}

// complete validates the flags and fills in defaults.
func (o *UpOptions) complete(cmd *cobra.Command, specs []string) error {
	if !cmd.Flags().Changed("instances") && len(specs) > 0 {
		o.Healthy = 0
	}
	if o.Healthy < 0 || o.Healthy > 100 {
		return cmdutil.FlagErrorf("--instances must be from 0 to 100, not %d", o.Healthy)
	}
	if o.MaxRequestBody < 0 {
		return cmdutil.FlagErrorf("--max-request-body must be a positive number of bytes, not %d", o.MaxRequestBody)
	}
	if o.Port < 0 || o.Port > 65535 {
		return cmdutil.FlagErrorf("--port must be from 0 to 65535, not %d", o.Port)
	}
	if o.AgentVersion != "" && !version.Valid(o.AgentVersion) {
		return cmdutil.FlagErrorf("--agent-version %q is not a 4-part version such as 3.3.1142.0", o.AgentVersion)
	}
	if o.MotoURL != "" && !strings.HasPrefix(o.MotoURL, "http://") && !strings.HasPrefix(o.MotoURL, "https://") {
		return cmdutil.FlagErrorf("--moto-url must be an http:// or https:// URL")
	}
	names := map[string]bool{}
	for i := 1; i <= o.Healthy; i++ {
		names["web-"+strconv.Itoa(i)] = true
	}
	o.Specs = nil
	for _, s := range specs {
		spec, err := ParseInstanceSpec(s)
		if err != nil {
			return cmdutil.FlagErrorWrap(err)
		}
		if names[spec.Name] {
			return cmdutil.FlagErrorf("--instance %q: the name %s is used twice", s, spec.Name)
		}
		names[spec.Name] = true
		o.Specs = append(o.Specs, spec)
	}
	dir, err := resolveStateDir(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = dir
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ParseInstanceSpec parses an --instance value: name[:opt,...] with opts
// offline, no-role, isolated, version=X.Y.Z.W and tag=KEY=VALUE.
func ParseInstanceSpec(s string) (sandbox.InstanceSpec, error) {
	name, optList, _ := strings.Cut(s, ":")
	spec := sandbox.InstanceSpec{Name: name}
	if !nameRE.MatchString(name) {
		return spec, fmt.Errorf("--instance %q: the name must be 1 to 63 letters, digits, '.', '_' or '-'", s)
	}
	if optList == "" {
		if strings.Contains(s, ":") {
			return spec, fmt.Errorf("--instance %q: no options after ':'", s)
		}
		return spec, nil
	}
	for _, opt := range strings.Split(optList, ",") {
		key, val, hasVal := strings.Cut(opt, "=")
		switch {
		case opt == "offline":
			spec.Offline = true
		case opt == "no-role":
			spec.NoRole = true
		case opt == "isolated":
			spec.Isolated = true
		case opt == "hybrid":
			spec.Hybrid = true
		case key == "version" && hasVal:
			if !version.Valid(val) {
				return spec, fmt.Errorf("--instance %q: version %q is not a 4-part version such as 3.0.161.0", s, val)
			}
			spec.AgentVersion = val
		case key == "tag" && hasVal:
			k, v, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return spec, fmt.Errorf("--instance %q: tag %q is not KEY=VALUE", s, val)
			}
			if spec.Tags == nil {
				spec.Tags = map[string]string{}
			}
			spec.Tags[k] = v
		default:
			return spec, fmt.Errorf("--instance %q: unknown option %q (want offline, no-role, isolated, hybrid, version=X.Y.Z.W or tag=K=V)", s, opt)
		}
	}
	if spec.Hybrid && (spec.NoRole || spec.Isolated) {
		return spec, fmt.Errorf("--instance %q: no-role and isolated describe EC2 instances, not a hybrid node", s)
	}
	if spec.Offline && (spec.NoRole || spec.Isolated) {
		return spec, fmt.Errorf("--instance %q: offline applies to a registered instance; no-role and isolated never register", s)
	}
	return spec, nil
}

// upRun starts `ssmkit sandbox serve` detached and waits until it is ready.
func upRun(ctx context.Context, opts *UpOptions, specs []string) error {
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating the state directory %s: %w", opts.StateDir, err)
	}
	if st, err := liveState(opts.StateDir); err == nil {
		return fmt.Errorf("a sandbox is already running at %s (pid %d); stop it with 'ssmkit sandbox down%s'", st.URL, st.PID, stateDirArg(opts.StateDir))
	}
	exe, err := opts.Executable()
	if err != nil {
		return fmt.Errorf("finding the ssmkit executable: %w", err)
	}
	logPath := filepath.Join(opts.StateDir, LogFile)
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating the sandbox log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	child := exec.Command(exe, opts.serveArgs(specs)...)
	child.Stdin, child.Stdout, child.Stderr = devnull, logf, logf
	child.Dir = opts.StateDir
	detach(child)
	start := time.Now()
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting the sandbox process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	fmt.Fprintf(opts.IO.ErrOut, "Starting the sandbox (pid %d, log %s)…\n", child.Process.Pid, logPath)
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := ReadState(opts.StateDir); err == nil && st.PID == child.Process.Pid {
			cs := opts.IO.ColorScheme()
			fmt.Fprintf(opts.IO.ErrOut, "%s Sandbox running at %s (pid %d, ready in %.1fs)\n", cs.SuccessIcon(), st.URL, st.PID, time.Since(start).Seconds())
			if err := printInstances(opts.IO, st, nil); err != nil {
				return err
			}
			printHint(opts.IO, opts.StateDir)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the sandbox process exited during start-up (%w): %s", err, logTail(logPath))
		case <-ctx.Done():
			_ = stopProcess(child.Process.Pid, 5*time.Second)
			<-exited
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return fmt.Errorf("the sandbox was not ready after %v: %s", readyTimeout, logTail(logPath))
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of the log, for start-up failures.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return "see " + path
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// serveRun runs the sandbox until ctx ends (SIGTERM, Ctrl-C).
func serveRun(ctx context.Context, opts *UpOptions, foreground bool) error {
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating the state directory %s: %w", opts.StateDir, err)
	}
	if st, err := liveState(opts.StateDir); err == nil && st.PID != os.Getpid() {
		return fmt.Errorf("a sandbox is already running at %s (pid %d); stop it with 'ssmkit sandbox down%s'", st.URL, st.PID, stateDirArg(opts.StateDir))
	}
	logger := log.New(opts.IO.ErrOut, "", log.LstdFlags|log.Lmicroseconds)
	logf := logger.Printf
	if foreground {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	sb, err := sandbox.Start(startCtx, sandbox.Options{
		Instances:  opts.instances(),
		MotoURL:    opts.MotoURL,
		Addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port)),
		TLS:        opts.TLS,
		StateDir:   opts.StateDir,
		Logf:       logf,
		AutoAttach: opts.AutoAttach,

		LegacyNonInteractiveDocument: opts.LegacyNonInteractive,
		MaxRequestBody:               opts.MaxRequestBody,
		AgentVersion:                 opts.AgentVersion,
		Proxy:                        opts.Proxy,
		AgentRealism:                 opts.AgentRealism,
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	if err := sb.WaitReady(startCtx); err != nil {
		return err
	}
	st := &State{
		URL: sb.URL(), PID: os.Getpid(), Region: sb.Region(), CA: sb.CAFile(), MotoURL: sb.MotoURL(),
		StartedAt: time.Now().UTC().Truncate(time.Second), AutoAttach: opts.AutoAttach, Env: sb.Env(), ProxyURL: sb.ProxyURL(),
		Log: filepath.Join(opts.StateDir, LogFile),
	}
	if foreground {
		st.Log = ""
	}
	for _, i := range sb.Instances() {
		health := "healthy"
		switch {
		case i.Spec.NoRole:
			health = "no-role"
		case i.Spec.Isolated:
			health = "isolated"
		case i.Offline:
			health = "offline"
		}
		st.Instances = append(st.Instances, InstanceState{Name: i.Name, ID: i.ID, AgentVersion: i.AgentVersion,
			PrivateIP: i.PrivateIP, Health: health, Hybrid: i.Hybrid, Tags: i.Spec.Tags})
	}
	if opts.TLS {
		if st.AgentConfig, err = writeAgentConfig(opts.StateDir, sb); err != nil {
			return err
		}
	}
	if err := writeState(opts.StateDir, st); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(opts.StateDir, StateFile))
	logf("sandbox ready at %s in %v (%d instances, auto-attach %t)", st.URL, time.Since(start).Round(time.Millisecond), len(st.Instances), opts.AutoAttach)
	if foreground {
		cs := opts.IO.ColorScheme()
		fmt.Fprintf(opts.IO.ErrOut, "%s Sandbox running at %s (ready in %.1fs); press Ctrl-C to stop\n", cs.SuccessIcon(), st.URL, time.Since(start).Seconds())
		if err := printInstances(opts.IO, st, nil); err != nil {
			return err
		}
		printHint(opts.IO, opts.StateDir)
	}
	<-ctx.Done()
	logf("stopping")
	_ = sb.Close()
	if foreground {
		fmt.Fprintf(opts.IO.ErrOut, "%s Sandbox stopped\n", opts.IO.ColorScheme().SuccessIcon())
	}
	return nil
}

// stateDirArg is " --state-dir DIR" unless dir is the default.
func stateDirArg(dir string) string {
	if def, err := DefaultStateDir(os.Getenv); err == nil && def == dir {
		return ""
	}
	return " --state-dir " + shellQuote(dir)
}

// printHint tells how to point a shell at the sandbox.
func printHint(ios *iostreams.IOStreams, dir string) {
	fmt.Fprintf(ios.ErrOut, "\nPoint this shell at it:  eval \"$(ssmkit sandbox env%s)\"\nStop it:                 ssmkit sandbox down%s\n",
		stateDirArg(dir), stateDirArg(dir))
}

// printInstances prints the instances as a table; live, when given, maps
// instance ids to their current ping status.
func printInstances(ios *iostreams.IOStreams, st *State, live map[string]string) error {
	tp := cmdutil.NewTablePrinter(ios)
	cs := ios.ColorScheme()
	tp.SetHeader("Name", "Instance ID", "Status", "Agent", "Private IP")
	rows := append([]InstanceState(nil), st.Instances...)
	known := map[string]bool{}
	for _, i := range rows {
		known[i.ID] = true
	}
	// Instances attached later (Terraform, the AWS CLI) show up live only.
	var extra []string
	for id := range live {
		if !known[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		rows = append(rows, InstanceState{ID: id, Health: "attached"})
	}
	for _, i := range rows {
		status := map[string]string{"healthy": "Online", "attached": "Online", "offline": "ConnectionLost",
			"no-role": "not managed (no role)", "isolated": "not managed (no route)"}[i.Health]
		if s, ok := live[i.ID]; ok {
			status = s
		} else if live != nil && (i.Health == "healthy" || i.Health == "attached") {
			status = "not managed"
		}
		colored := status
		switch {
		case status == "Online":
			colored = cs.Green(status)
		case strings.HasPrefix(status, "not managed"):
			colored = cs.Red(status)
		default:
			colored = cs.Yellow(status)
		}
		name, agentVersion := i.Name, i.AgentVersion
		if name == "" {
			name = "-"
		}
		if agentVersion == "" {
			agentVersion = "-"
		}
		ip := i.PrivateIP
		if ip == "" {
			ip = "-"
		}
		tp.AddRow(name, i.ID, colored, agentVersion, ip)
	}
	return tp.Render()
}

// agentConfig is amazon-ssm-agent.json for a real agent pointed at the
// sandbox (REAL-AGENT.md): a custom identity, every endpoint the sandbox.
type agentConfig struct {
	Agent    map[string]any `json:"Agent"`
	Identity map[string]any `json:"Identity"`
	Mgs      map[string]any `json:"Mgs"`
	Ssm      map[string]any `json:"Ssm"`
	Mds      map[string]any `json:"Mds"`
	Kms      map[string]any `json:"Kms"`
	S3       map[string]any `json:"S3"`
}

// writeAgentConfig writes the real agent's configuration to the state
// directory and returns its path. Its managed-instance id is random per
// start. Every endpoint is the sandbox's full URL with its scheme: the
// agent runs Mgs.Endpoint through url.Parse and keeps only the host, and a
// bare host:port fails there ("first path segment in URL cannot contain
// colon"), after which the agent silently falls back to
// ssmmessages.<region>.amazonaws.com (SESSION-PROTOCOL.md §11.19).
func writeAgentConfig(dir string, sb *sandbox.Sandbox) (string, error) {
	var id [9]byte
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		return "", fmt.Errorf("generating the agent's instance id: %w", err)
	}
	instanceID := "mi-" + hex.EncodeToString(id[:])[:17]
	cfg := agentConfig{
		Agent: map[string]any{"Region": sb.Region(), "ContainerMode": false},
		Identity: map[string]any{
			"ConsumptionOrder": []string{"CustomIdentity"},
			"CustomIdentities": []map[string]string{{"InstanceID": instanceID, "Region": sb.Region(), "CredentialsProvider": "DEFAULT"}},
		},
		Mgs: map[string]any{"Region": sb.Region(), "Endpoint": sb.URL()},
		Ssm: map[string]any{"Endpoint": sb.URL()},
		Mds: map[string]any{"Endpoint": sb.URL()},
		Kms: map[string]any{"Endpoint": sb.URL()},
		S3:  map[string]any{"Endpoint": sb.URL(), "Region": sb.Region()},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the agent configuration: %w", err)
	}
	path := filepath.Join(dir, AgentConfigFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("writing the agent configuration: %w", err)
	}
	return path, nil
}
