package prefs

import (
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
)

// NewCmdDiff returns `prefs diff`: `apply --dry-run` under its own name.
// runF replaces the run function in tests.
func NewCmdDiff(f *cmdutil.Factory, runF func(*ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{WriteOptions: WriteOptions{Options: Options{IO: f.IOStreams}, DryRun: true}}
	cmd := &cobra.Command{
		Use:   "diff -f <file>",
		Short: "Show what applying a file would change",
		Long: "Compare a JSON or YAML document with the preferences in effect and print each change\n" +
			"(+ added, - removed, ~ changed). Nothing is written. The file is validated as apply\n" +
			"would, including that the KMS key, bucket and log group exist.",
		Example: "  ssmkit prefs diff -f prefs.yaml\n" +
			"  ssmkit prefs diff -f prefs.json --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := finish(f, &opts.Options); err != nil {
				return err
			}
			if opts.File == "" {
				return cmdutil.FlagErrorf("-f <file> is required (use - for stdin)")
			}
			if runF != nil {
				return runF(opts)
			}
			return applyRun(cmd.Context(), opts)
		},
	}
	addCommonFlags(cmd, &opts.Options)
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "JSON or YAML document (- reads stdin)")
	return cmd
}
