package prefs

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// ShowOptions are the inputs of `ssmkit prefs show`.
type ShowOptions struct {
	Options
}

// NewCmdShow returns `prefs show`. runF replaces the run function in tests.
func NewCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{Options: Options{IO: f.IOStreams}}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the preferences in effect",
		Long: "Show the preferences in effect (the document's default version). With --json the\n" +
			"document itself is printed, ready for `ssmkit prefs apply -f`. A document that was never\n" +
			"saved shows Session Manager's defaults.",
		Example: "  ssmkit prefs show\n" +
			"  ssmkit prefs show --json > prefs.json\n" +
			"  ssmkit prefs show --document MyShellDocument",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := finish(f, &opts.Options); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	addCommonFlags(cmd, &opts.Options)
	return cmd
}

func showRun(ctx context.Context, opts *ShowOptions) error {
	c, err := opts.Clients(ctx)
	if err != nil {
		return err
	}
	snap, err := prefs.Store{SSM: c.SSM, Name: opts.Document}.Load(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO, snap.Doc.Map())
	}
	if snap.Exists {
		fmt.Fprintf(opts.IO.ErrOut, "%s: version %s (default) of %s\n", snap.Name, snap.DefaultVersion, snap.LatestVersion)
	} else {
		fmt.Fprintf(opts.IO.ErrOut, "%s does not exist yet: these are Session Manager's defaults\n", snap.Name)
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.SetHeader("SETTING", "VALUE")
	known := map[string]bool{}
	for _, fl := range prefs.Fields() {
		known[fl.Key] = true
		v, ok := snap.Doc.Get(fl.Key)
		if !ok {
			continue
		}
		tp.AddRow(fl.Key, display(v, snap.Doc.String(fl.Key)))
	}
	// Inputs ssmkit does not know, then other top-level keys.
	var rest []prefs.Change
	for _, c := range prefs.Diff(&prefs.Document{}, snap.Doc) {
		key := strings.TrimPrefix(c.Path, "inputs.")
		if !known[key] {
			rest = append(rest, c)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool {
		return strings.HasPrefix(rest[i].Path, "inputs.") && !strings.HasPrefix(rest[j].Path, "inputs.")
	})
	for _, c := range rest {
		tp.AddRow(strings.TrimPrefix(c.Path, "inputs."), c.New)
	}
	return tp.Render()
}

// display shows empty values as "-" so that columns stay readable.
func display(v any, s string) string {
	if v == nil || s == "" {
		return "-"
	}
	return s
}

// readFileLimited reads a file of at most 1 MiB (documents are 64 KiB).
func readFileLimited(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, 1<<20))
}
