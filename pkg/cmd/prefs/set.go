package prefs

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// SetOptions are the inputs of `ssmkit prefs set`.
type SetOptions struct {
	WriteOptions
	// Values are the inputs to change, by key, in the types the console
	// writes (bool for booleans, string otherwise).
	Values map[string]any
}

// setFlag binds one `set` flag to an input.
type setFlag struct {
	flag, key, usage string
	kind             prefs.Kind
}

func setFlags() []setFlag {
	return []setFlag{
		{"s3-bucket", prefs.KeyS3Bucket, "S3 bucket for session transcripts (\"\" turns S3 logging off)", prefs.KindString},
		{"s3-prefix", prefs.KeyS3Prefix, "Key prefix of transcripts in the bucket", prefs.KindString},
		{"s3-encryption", prefs.KeyS3Encryption, "Only write transcripts to a bucket with default encryption", prefs.KindBool},
		{"cw-log-group", prefs.KeyLogGroup, "CloudWatch Logs group for transcripts (\"\" turns it off)", prefs.KindString},
		{"cw-encryption", prefs.KeyLogEncryption, "Only write transcripts to an encrypted log group", prefs.KindBool},
		{"cw-streaming", prefs.KeyLogStreaming, "Stream transcripts to CloudWatch while the session runs (else upload at the end)", prefs.KindBool},
		{"kms-key", prefs.KeyKMSKey, "KMS key id, ARN or alias/<name> that encrypts session data (\"\" turns it off)", prefs.KindString},
		{"run-as", prefs.KeyRunAsEnabled, "Run Linux sessions as an OS user instead of ssm-user", prefs.KindBool},
		{"run-as-default-user", prefs.KeyRunAsDefaultUser, "OS user for --run-as sessions (not root)", prefs.KindString},
		{"idle-timeout", prefs.KeyIdleSessionTimeout, "Minutes without input before a session ends (1–60)", prefs.KindMinutes},
		{"max-duration", prefs.KeyMaxSessionDuration, "Maximum session length in minutes (1–1440; 0 removes the limit)", prefs.KindMinutes},
		{"shell-profile-linux", prefs.KeyShellProfileLinux, "Commands run at the start of Linux shell sessions", prefs.KindString},
		{"shell-profile-windows", prefs.KeyShellProfileWindows, "Commands run at the start of Windows shell sessions", prefs.KindString},
	}
}

// NewCmdSet returns `prefs set`. runF replaces the run function in tests.
func NewCmdSet(f *cmdutil.Factory, runF func(*SetOptions) error) *cobra.Command {
	opts := &SetOptions{WriteOptions: WriteOptions{Options: Options{IO: f.IOStreams}}}
	strs := map[string]*string{}
	bools := map[string]*bool{}
	ints := map[string]*int{}
	cmd := &cobra.Command{
		Use:   "set [flags]",
		Short: "Change preferences flag by flag",
		Long: "Change the given preferences and leave everything else in the document as it is.\n" +
			"Values are checked before anything is written: minute ranges, booleans, names, that\n" +
			"the KMS key, bucket and log group exist (or --create-targets makes the bucket and log\n" +
			"group), and that sessions do not run as root.",
		Example: "  ssmkit prefs set --cw-log-group /ssm/sessions --cw-streaming --create-targets\n" +
			"  ssmkit prefs set --s3-bucket my-transcripts --s3-prefix sessions --kms-key alias/ssm\n" +
			"  ssmkit prefs set --idle-timeout 15 --max-duration 240 --dry-run\n" +
			"  ssmkit prefs set --run-as --run-as-default-user ops",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := finishWrite(f, cmd, &opts.WriteOptions); err != nil {
				return err
			}
			opts.Values = map[string]any{}
			for _, s := range setFlags() {
				if !cmd.Flags().Changed(s.flag) {
					continue
				}
				switch s.kind {
				case prefs.KindBool:
					opts.Values[s.key] = *bools[s.flag]
				case prefs.KindMinutes:
					n := *ints[s.flag]
					if n == 0 && s.key == prefs.KeyMaxSessionDuration {
						opts.Values[s.key] = ""
					} else {
						opts.Values[s.key] = strconv.Itoa(n)
					}
				default:
					opts.Values[s.key] = *strs[s.flag]
				}
			}
			if len(opts.Values) == 0 {
				return cmdutil.FlagErrorf("no preferences given: pass at least one flag such as --idle-timeout (see --help)")
			}
			// Flag values are checked on their own first, so that a bad one
			// is a usage error (exit 2) naming the flag.
			scratch := prefs.Default()
			for k, v := range opts.Values {
				scratch.Set(k, v)
			}
			if err := prefs.Validate(scratch); err != nil {
				return flagErrors(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return setRun(cmd.Context(), opts)
		},
	}
	addWriteFlags(cmd, &opts.WriteOptions)
	for _, s := range setFlags() {
		switch s.kind {
		case prefs.KindBool:
			bools[s.flag] = cmd.Flags().Bool(s.flag, false, s.usage)
		case prefs.KindMinutes:
			ints[s.flag] = cmd.Flags().Int(s.flag, 0, s.usage)
		default:
			strs[s.flag] = cmd.Flags().String(s.flag, "", s.usage)
		}
	}
	return cmd
}

func setRun(ctx context.Context, opts *SetOptions) error {
	return edit(ctx, &opts.WriteOptions, func(d *prefs.Document) (*prefs.Document, error) {
		for k, v := range opts.Values {
			d.Set(k, v)
		}
		if opts.Values[prefs.KeyRunAsEnabled] == true && d.String(prefs.KeyRunAsDefaultUser) == "" {
			return nil, cmdutil.FlagErrorf("--run-as needs --run-as-default-user (or a user already in %s)", opts.Document)
		}
		return d, nil
	})
}
