// Package plugin implements `ssmkit plugin`: ssmkit as the AWS CLI's
// session-manager-plugin. The AWS CLI calls StartSession and runs
//
//	session-manager-plugin <response JSON | AWS_SSM_START_SESSION_RESPONSE> <region> StartSession <profile> <request JSON> <ssm endpoint>
//
// (REAL-AGENT.md "What the real AWS CLI does with a plugin", SESSION-PROTOCOL.md
// §1.1). ssmkit answers to that name through a link (`ssmkit plugin install`)
// and to `ssmkit plugin` with the same arguments.
package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/protocol/datachannel"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/version"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// Name is the executable name the AWS CLI looks up on PATH.
const Name = "session-manager-plugin"

// Version is what `session-manager-plugin --version` prints: a 4-part
// version above 1.2.497.0, so that the AWS CLI passes the StartSession
// response in the environment, and above 1.2.331.0, the agent's gate for
// smux keepalive. It is the version the data channel reports.
const Version = datachannel.DefaultClientVersion

// responseEnvPrefix marks argument 1 as the name of an environment
// variable holding the response (CLIs that saw a version above 1.2.497.0).
const responseEnvPrefix = "AWS_SSM_START_SESSION_RESPONSE"

// operationStartSession is the only operation the AWS CLI hands over.
const operationStartSession = "StartSession"

// PluginOptions are the inputs of `ssmkit plugin`.
type PluginOptions struct {
	IO *iostreams.IOStreams
	// Getenv and Unsetenv read and remove the response variable.
	Getenv   func(string) string
	Unsetenv func(string) error
	// Clients builds the AWS clients for the region, profile and SSM
	// endpoint the CLI passed.
	Clients func(ctx context.Context, region, profile, endpoint string) (session.Clients, error)
	// Logf receives debug lines (--debug); nil discards them.
	Logf func(format string, args ...any)

	// Version is --version.
	Version bool
	// Args are the AWS CLI's arguments.
	Args []string
}

// Invocation is what the AWS CLI passed.
type Invocation struct {
	Response StartResponse
	Region   string
	Profile  string
	Request  StartRequest
	Endpoint string
	// Legacy is the 4-argument form of old CLIs: no profile, no request,
	// so no KMS encryption (the data key is bound to the target).
	Legacy bool
}

// StartResponse is StartSession's response as the CLI passes it.
type StartResponse = session.StartResponse

// StartRequest is the StartSession request as the CLI passes it.
type StartRequest struct {
	Target       string              `json:"Target"`
	DocumentName string              `json:"DocumentName"`
	Parameters   map[string][]string `json:"Parameters"`
}

// NewCmdPlugin returns the `plugin` command. runF replaces the run
// function in tests.
func NewCmdPlugin(f *cmdutil.Factory, runF func(*PluginOptions) error) *cobra.Command {
	opts := &PluginOptions{IO: f.IOStreams, Getenv: os.Getenv, Unsetenv: os.Unsetenv}
	cmd := &cobra.Command{
		Use:   "plugin <response> <region> StartSession <profile> <request> <endpoint>",
		Short: "Act as the AWS CLI's session-manager-plugin",
		Long: "Run a session the AWS CLI started, as the session-manager-plugin does: `aws ssm\n" +
			"start-session` (and every tool built on it) works with ssmkit in place of the plugin.\n\n" +
			"Install the link once with `ssmkit plugin install`; the AWS CLI then finds ssmkit as\n" +
			"session-manager-plugin on PATH. Every AWS-owned session document works: shells,\n" +
			"AWS-StartInteractiveCommand, AWS-StartNonInteractiveCommand (exit status = the command's\n" +
			"when the document reports it), port forwarding to the node or a remote host, and SSH.\n" +
			"KMS-encrypted sessions use the region, profile and endpoint the AWS CLI passed.",
		Example: "  ssmkit plugin install\n" +
			"  aws ssm start-session --target i-0123456789abcdef0\n" +
			"  session-manager-plugin --version",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			if opts.Clients == nil {
				opts.Clients = clientsFor(f)
			}
			opts.Logf = f.DebugLogf()
			if runF != nil {
				return runF(opts)
			}
			return pluginRun(cmd.Context(), opts)
		},
	}
	// The AWS CLI passes positional arguments only; a profile or JSON that
	// starts with "-" must not be taken for a flag.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVar(&opts.Version, "version", false, "Print the plugin version the AWS CLI checks")
	cmd.AddCommand(NewCmdInstall(f, nil))
	return cmd
}

// ParseArgs reads the AWS CLI's arguments: the response (or the name of
// the variable holding it, which is then removed from the environment),
// region, operation, profile, request and SSM endpoint.
func ParseArgs(args []string, getenv func(string) string, unsetenv func(string) error) (Invocation, error) {
	var inv Invocation
	if len(args) < 4 {
		return inv, cmdutil.FlagErrorf("expected the AWS CLI's arguments: <response> <region> StartSession <profile> <request> <endpoint> (or run `aws ssm start-session`)")
	}
	raw := args[0]
	if strings.HasPrefix(raw, responseEnvPrefix) {
		name := raw
		raw = getenv(name)
		if unsetenv != nil {
			_ = unsetenv(name)
		}
		if raw == "" {
			return inv, cmdutil.FlagErrorf("the environment variable %s holds no StartSession response", name)
		}
	}
	if err := json.Unmarshal([]byte(raw), &inv.Response); err != nil {
		return inv, cmdutil.FlagErrorf("the StartSession response is not JSON: %w", err)
	}
	if inv.Response.SessionID == "" || inv.Response.StreamURL == "" || inv.Response.TokenValue == "" {
		return inv, cmdutil.FlagErrorf("the StartSession response lacks SessionId, StreamUrl or TokenValue")
	}
	inv.Region = args[1]
	if op := args[2]; op != operationStartSession {
		return inv, cmdutil.FlagErrorf("unknown operation %q: only %s is supported", op, operationStartSession)
	}
	inv.Profile = args[3]
	if len(args) == 4 {
		inv.Legacy = true
		return inv, nil
	}
	if err := json.Unmarshal([]byte(args[4]), &inv.Request); err != nil {
		return inv, cmdutil.FlagErrorf("the StartSession request is not JSON: %w", err)
	}
	if len(args) > 5 {
		inv.Endpoint = args[5]
	}
	return inv, nil
}

func pluginRun(ctx context.Context, opts *PluginOptions) error {
	out := opts.IO.Out
	if opts.Version {
		fmt.Fprintln(out, Version)
		return nil
	}
	if len(opts.Args) == 0 {
		// What the official plugin says when run by hand.
		fmt.Fprint(out, "\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n\n")
		return nil
	}
	inv, err := ParseArgs(opts.Args, opts.Getenv, opts.Unsetenv)
	if err != nil {
		return err
	}
	c, err := opts.Clients(ctx, inv.Region, inv.Profile, inv.Endpoint)
	if err != nil {
		return err
	}
	keys := c.KMS
	if inv.Legacy {
		keys = nil // the data key would not be bound to the target
	}
	// The official plugin greets on standard output; for SSH, standard
	// output is the SSH stream, so the greeting goes to standard error.
	notice := out
	if inv.Request.DocumentName == ssmdoc.SSH {
		notice = opts.IO.ErrOut
	}
	fmt.Fprintf(notice, "\nStarting session with SessionId: %s\n", inv.Response.SessionID)
	s, err := session.Attach(ctx, c.SSM, inv.Request.Target, inv.Response, session.Options{KeyService: keys, Dial: c.Dial, Logf: opts.Logf})
	if err != nil {
		return err
	}
	defer s.Close()
	info := s.Info()
	switch {
	case info.SessionType == ssmdoc.SessionTypePort:
		var props portProperties
		_ = json.Unmarshal(info.Properties, &props)
		if props.Type == "LocalPortForwarding" {
			return forward(ctx, s, props, opts.IO)
		}
		return session.Stream(ctx, s, opts.IO.In, out)
	case info.SessionType == ssmdoc.SessionTypeNonInteractiveCommands:
		code, err := session.RunCommand(ctx, s, session.CommandIO{Stdout: out, Stderr: opts.IO.ErrOut})
		if err != nil {
			return err
		}
		if code != session.NoExitCode && code != 0 {
			return cmdutil.ExitCodeError(code)
		}
		return nil
	}
	// Shells print their messages on standard output, as the official
	// plugin does.
	in, _ := opts.IO.In.(*os.File)
	return session.RunInteractive(ctx, s, session.ShellIO{Stdin: opts.IO.In, Stdout: out, Stderr: out}, in, opts.IO.IsStdinTTY())
}

// portProperties are the client-side keys of a Port session (§8.1).
type portProperties struct {
	PortNumber          string `json:"portNumber"`
	LocalPortNumber     string `json:"localPortNumber"`
	LocalUnixSocket     string `json:"localUnixSocket"`
	LocalConnectionType string `json:"localConnectionType"`
	Type                string `json:"type"`
}

// forward listens where the document says and prints what the official
// plugin prints (§8.4), so that scripts waiting for "Waiting for
// connections" work. Ctrl-C ends the session.
func forward(ctx context.Context, s *session.Session, props portProperties, ios *iostreams.IOStreams) error {
	out := ios.Out
	var (
		ln  net.Listener
		err error
		msg string
	)
	if props.LocalConnectionType == "unix" {
		ln, err = net.Listen("unix", props.LocalUnixSocket)
		msg = fmt.Sprintf("Unix socket %s opened for sessionId %s.", props.LocalUnixSocket, s.ID())
	} else {
		port := props.LocalPortNumber
		if port == "" {
			port = "0"
		}
		ln, err = net.Listen("tcp", net.JoinHostPort("localhost", port))
		if err == nil {
			msg = fmt.Sprintf("Port %d opened for sessionId %s.", ln.Addr().(*net.TCPAddr).Port, s.ID())
		}
	}
	if err != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = s.Terminate(tctx)
		cancel()
		return fmt.Errorf("listening for local connections: %w", err)
	}
	mux := version.ClientUsesMux(s.Info().AgentVersion)
	var once sync.Once
	err = session.Forward(ctx, s, session.ForwardOptions{
		Listener: ln,
		Stderr:   ios.ErrOut,
		OnReady: func(net.Addr) {
			fmt.Fprint(out, msg)
			fmt.Fprint(out, "\nWaiting for connections...\n")
		},
		OnAccept: func(net.Conn) {
			if mux {
				once.Do(func() { fmt.Fprintf(out, "\nConnection accepted for session [%s]\n", s.ID()) })
			} else {
				fmt.Fprintf(out, "Connection accepted for session %s.\n", s.ID())
			}
		},
	})
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		fmt.Fprintf(out, "\n\nExiting session with sessionId: %s.\n\n", s.ID())
	}
	return nil
}

// clientsFor builds the session clients for what the AWS CLI passed: its
// region and profile, and its SSM endpoint for ResumeSession and
// TerminateSession. KMS uses the same endpoint when it is not an AWS one
// (a sandbox or emulator serving every API), else the standard
// resolution, which honours AWS_ENDPOINT_URL_KMS.
func clientsFor(f *cmdutil.Factory) func(ctx context.Context, region, profile, endpoint string) (session.Clients, error) {
	return func(ctx context.Context, region, profile, endpoint string) (session.Clients, error) {
		cfg, err := awsapi.LoadConfig(ctx, awsapi.Options{
			Profile: profile, Region: region,
			Debug: f.Options.Debug, DebugOut: f.IOStreams.ErrOut,
			OnCredentials: func(c aws.Credentials) {
				if f.Redactor != nil {
					f.Redactor.Add(c.SecretAccessKey, c.SessionToken)
				}
			},
		})
		if err != nil {
			return session.Clients{}, err
		}
		ssmc := awsapi.NewSSM(cfg, func(o *ssm.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		})
		kmsc := awsapi.NewKMS(cfg, func(o *kms.Options) {
			if endpoint != "" && !isAWSEndpoint(endpoint) {
				o.BaseEndpoint = aws.String(endpoint)
			}
		})
		return session.Clients{SSM: ssmc, KMS: encryption.NewKMSKeyService(kmsc)}, nil
	}
}

// isAWSEndpoint reports whether u is an AWS service endpoint rather than
// an emulator's.
func isAWSEndpoint(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := strings.ToLower(p.Hostname())
	for _, suffix := range []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".c2s.ic.gov", ".sc2s.sgov.gov"} {
		if strings.HasSuffix(h, suffix) {
			return true
		}
	}
	return false
}
