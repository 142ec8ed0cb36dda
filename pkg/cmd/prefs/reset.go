package prefs

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// ResetOptions are the inputs of `ssmkit prefs reset`.
type ResetOptions struct {
	WriteOptions
}

// NewCmdReset returns `prefs reset`. runF replaces the run function in tests.
func NewCmdReset(f *cmdutil.Factory, runF func(*ResetOptions) error) *cobra.Command {
	opts := &ResetOptions{WriteOptions: WriteOptions{Options: Options{IO: f.IOStreams}}}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Put the preferences back to Session Manager's defaults",
		Long: "Set every preference ssmkit knows back to the Session Manager defaults: no S3 or\n" +
			"CloudWatch logging, no KMS encryption, no run-as, a 20-minute idle timeout and no\n" +
			"maximum duration. Other keys in the document are kept. The old content stays in the\n" +
			"document's version history.",
		Example: "  ssmkit prefs reset --dry-run\n" +
			"  ssmkit prefs reset",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := finish(f, &opts.Options); err != nil {
				return err
			}
			opts.RetentionDays = prefs.DefaultRetentionDays
			if runF != nil {
				return runF(opts)
			}
			return resetRun(cmd.Context(), opts)
		},
	}
	addCommonFlags(cmd, &opts.Options)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "Show what would change and write nothing")
	return cmd
}

func resetRun(ctx context.Context, opts *ResetOptions) error {
	return edit(ctx, &opts.WriteOptions, func(d *prefs.Document) (*prefs.Document, error) {
		d.ResetInputs()
		return d, nil
	})
}
