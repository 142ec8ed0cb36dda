package prefs

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// ApplyOptions are the inputs of `ssmkit prefs apply` and `prefs diff`.
type ApplyOptions struct {
	WriteOptions
	// File is -f: a JSON or YAML document, "-" for stdin.
	File string
	// ReadFile reads File; tests replace it.
	ReadFile func(name string) ([]byte, error)
}

// NewCmdApply returns `prefs apply`. runF replaces the run function in tests.
func NewCmdApply(f *cmdutil.Factory, runF func(*ApplyOptions) error) *cobra.Command {
	opts := &ApplyOptions{WriteOptions: WriteOptions{Options: Options{IO: f.IOStreams}}}
	cmd := &cobra.Command{
		Use:   "apply -f <file>",
		Short: "Make a JSON or YAML file the whole preferences document",
		Long: "Make the file the document's content: the whole document as code. Keys in the file\n" +
			"that ssmkit does not know are written as they are; keys only in the current document\n" +
			"are removed (the diff shows them). `ssmkit prefs show --json` prints a file to start from.",
		Example: "  ssmkit prefs show --json > prefs.json && $EDITOR prefs.json\n" +
			"  ssmkit prefs apply -f prefs.json --dry-run\n" +
			"  ssmkit prefs apply -f prefs.yaml --create-targets",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := finishWrite(f, cmd, &opts.WriteOptions); err != nil {
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
	addWriteFlags(cmd, &opts.WriteOptions)
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "JSON or YAML document (- reads stdin)")
	return cmd
}

// readDocument reads and parses opts.File.
func readDocument(opts *ApplyOptions) (*prefs.Document, error) {
	var data []byte
	var err error
	switch {
	case opts.File == "-":
		data, err = io.ReadAll(io.LimitReader(opts.IO.In, 1<<20))
	case opts.ReadFile != nil:
		data, err = opts.ReadFile(opts.File)
	default:
		data, err = readFileLimited(opts.File)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", opts.File, err)
	}
	doc, err := prefs.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.File, err)
	}
	doc.Normalize()
	if err := prefs.Validate(doc); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.File, err)
	}
	return doc, nil
}

func applyRun(ctx context.Context, opts *ApplyOptions) error {
	// Read and validate the file before any AWS call.
	doc, err := readDocument(opts)
	if err != nil {
		return err
	}
	return edit(ctx, &opts.WriteOptions, func(*prefs.Document) (*prefs.Document, error) {
		return doc, nil
	})
}
