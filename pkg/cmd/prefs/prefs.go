// Package prefs implements `ssmkit prefs`: Session Manager preferences
// (the SSM-SessionManagerRunShell document, or another Session document
// with --document) shown, set flag by flag, applied from a file, diffed and
// reset, with validation before any write.
package prefs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// NewCmdPrefs returns the `prefs` command group.
func NewCmdPrefs(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prefs <command>",
		Short: "Manage Session Manager preferences (logging, encryption, timeouts, run-as) as code",
		Long: "Session Manager preferences live in the Session document " + ssmdoc.Shell + ".\n" +
			"These commands read it, change it flag by flag or from a file, and show exactly what\n" +
			"changes. Every value is validated before anything is written; each write is a new\n" +
			"document version made the default, refused if someone else changed the document since\n" +
			"it was read. Keys ssmkit does not know are kept as they are.\n\n" +
			"Logging must be enabled here: CloudTrail records API calls, not what happens in a session.",
	}
	cmd.AddCommand(NewCmdShow(f, nil))
	cmd.AddCommand(NewCmdSet(f, nil))
	cmd.AddCommand(NewCmdApply(f, nil))
	cmd.AddCommand(NewCmdDiff(f, nil))
	cmd.AddCommand(NewCmdReset(f, nil))
	return cmd
}

// Options are the inputs every prefs subcommand shares.
type Options struct {
	IO *iostreams.IOStreams
	// Clients returns the AWS APIs, loading the configuration on first use.
	Clients func(ctx context.Context) (prefs.Clients, error)
	// Document is --document (default SSM-SessionManagerRunShell).
	Document string
	// JSON is --json or --output json.
	JSON bool
}

// WriteOptions are the inputs of the subcommands that write.
type WriteOptions struct {
	Options
	// DryRun is --dry-run: show the changes, write nothing.
	DryRun bool
	// CreateTargets is --create-targets: create a missing bucket or log group.
	CreateTargets bool
	// RetentionDays is --retention-days for a created log group.
	RetentionDays int32
}

func addCommonFlags(cmd *cobra.Command, o *Options) {
	cmd.Flags().StringVar(&o.Document, "document", ssmdoc.Shell, "Session document that holds the preferences")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "Print JSON")
}

func addWriteFlags(cmd *cobra.Command, o *WriteOptions) {
	addCommonFlags(cmd, &o.Options)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "Show what would change and write nothing")
	cmd.Flags().BoolVar(&o.CreateTargets, "create-targets", false, "Create a missing S3 bucket (encrypted, public access blocked) or log group (with retention)")
	cmd.Flags().Int32Var(&o.RetentionDays, "retention-days", prefs.DefaultRetentionDays, "Retention of a log group made by --create-targets")
}

// finish fills what every RunE sets the same way: clients, --output json
// and the checks of shared flags.
func finish(f *cmdutil.Factory, o *Options) error {
	if f.Options.JSON() {
		o.JSON = true
	}
	if strings.TrimSpace(o.Document) == "" {
		return cmdutil.FlagErrorf("--document must name a document")
	}
	if o.Clients == nil {
		o.Clients = func(ctx context.Context) (prefs.Clients, error) {
			cfg, err := f.AWSConfig(ctx)
			if err != nil {
				return prefs.Clients{}, err
			}
			return prefs.NewClients(cfg), nil
		}
	}
	return nil
}

func finishWrite(f *cmdutil.Factory, cmd *cobra.Command, o *WriteOptions) error {
	if err := finish(f, &o.Options); err != nil {
		return err
	}
	if cmd.Flags().Changed("retention-days") && !o.CreateTargets {
		return cmdutil.FlagErrorf("--retention-days only applies with --create-targets")
	}
	valid := prefs.RetentionDays()
	for _, d := range valid {
		if d == o.RetentionDays {
			return nil
		}
	}
	return cmdutil.FlagErrorf("--retention-days must be one of %s, got %d", joinInts(valid), o.RetentionDays)
}

func joinInts(v []int32) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// writeResult is what the write commands print with --json.
type writeResult struct {
	Document string          `json:"document"`
	DryRun   bool            `json:"dry_run"`
	Changes  []prefs.Change  `json:"changes"`
	Result   *prefs.Result   `json:"result,omitempty"`
	Created  *prefs.Created  `json:"created_targets,omitempty"`
	Content  map[string]any  `json:"content"`
	Base     *prefs.Snapshot `json:"base"`
}

// edit is the shared write path: load, change, validate, check the
// targets, then print the diff and either stop (dry run) or save.
// change returns an error wrapping prefs.ErrInvalid for refused input.
func edit(ctx context.Context, o *WriteOptions, change func(base *prefs.Document) (*prefs.Document, error)) error {
	c, err := o.Clients(ctx)
	if err != nil {
		return err
	}
	store := prefs.Store{SSM: c.SSM, Name: o.Document}
	snap, err := store.Load(ctx)
	if err != nil {
		return err
	}
	doc, err := change(snap.Doc.Clone())
	if err != nil {
		return err
	}
	doc.Normalize()
	if err := prefs.Validate(doc); err != nil {
		return fmt.Errorf("%s: %w", o.Document, err)
	}
	cs := o.IO.ColorScheme()
	out := writeResult{Document: o.Document, DryRun: o.DryRun, Changes: prefs.Diff(snap.Doc, doc), Content: doc.Map(), Base: snap}
	if !snap.Exists {
		// Everything is new in a document that does not exist yet.
		out.Changes = prefs.Diff(&prefs.Document{}, doc)
	}
	created, err := prefs.CheckTargets(ctx, c.KMS, c.S3, c.Logs, doc, prefs.TargetOptions{
		Create: o.CreateTargets && !o.DryRun, RetentionDays: o.RetentionDays, Region: c.Region,
	})
	if err != nil {
		if !(o.DryRun && o.CreateTargets && errors.Is(err, prefs.ErrMissingTarget)) {
			return err
		}
		fmt.Fprintf(o.IO.ErrOut, "%s --create-targets would create: %s\n", cs.WarningIcon(), err)
	}
	if created != (prefs.Created{}) {
		out.Created = &created
		if created.Bucket != "" {
			fmt.Fprintf(o.IO.ErrOut, "%s Created S3 bucket %s (default encryption, public access blocked)\n", cs.SuccessIcon(), created.Bucket)
		}
		if created.LogGroup != "" {
			fmt.Fprintf(o.IO.ErrOut, "%s Created log group %s (retention %d days)\n", cs.SuccessIcon(), created.LogGroup, o.RetentionDays)
		}
	}
	if !o.DryRun {
		res, err := store.Save(ctx, snap, doc)
		if err != nil {
			return err
		}
		out.Result = res
	}
	if out.Changes == nil {
		out.Changes = []prefs.Change{}
	}
	if o.JSON {
		return cmdutil.PrintJSON(o.IO, out)
	}
	if err := printChanges(o.IO, out.Changes); err != nil {
		return err
	}
	switch r := out.Result; {
	case o.DryRun:
		fmt.Fprintf(o.IO.ErrOut, "Dry run: %d change(s) to %s, nothing written\n", len(out.Changes), o.Document)
	case !r.Changed:
		fmt.Fprintf(o.IO.ErrOut, "%s No changes: %s is already so (version %s)\n", cs.SuccessIcon(), o.Document, r.Version)
	case r.Created:
		fmt.Fprintf(o.IO.ErrOut, "%s Created %s (version %s)\n", cs.SuccessIcon(), o.Document, r.Version)
	case r.Reused:
		fmt.Fprintf(o.IO.ErrOut, "%s Updated %s: version %s had this content and is the default again\n", cs.SuccessIcon(), o.Document, r.Version)
	default:
		fmt.Fprintf(o.IO.ErrOut, "%s Updated %s: version %s is now the default\n", cs.SuccessIcon(), o.Document, r.Version)
	}
	return nil
}

// printChanges prints one row per change: +/-/~, the key, old and new.
func printChanges(ios *iostreams.IOStreams, changes []prefs.Change) error {
	if len(changes) == 0 {
		return nil
	}
	cs := ios.ColorScheme()
	tp := cmdutil.NewTablePrinter(ios)
	tp.SetHeader("", "SETTING", "OLD", "NEW")
	for _, c := range changes {
		op := c.Op
		switch op {
		case "+":
			op = cs.Green(op)
		case "-":
			op = cs.Red(op)
		default:
			op = cs.Yellow(op)
		}
		tp.AddRow(op, c.Path, c.Old, c.New)
	}
	return tp.Render()
}

// flagName maps input keys to the set flags, for usage errors.
func flagName(key string) string {
	for _, s := range setFlags() {
		if s.key == key {
			return "--" + s.flag
		}
	}
	return key
}

// flagErrors turns a validation of flag values into a usage error that
// names the flags.
func flagErrors(err error) error {
	var ves prefs.ValidationErrors
	if !errors.As(err, &ves) {
		return cmdutil.FlagErrorWrap(err)
	}
	parts := make([]string, len(ves))
	for i, e := range ves {
		parts[i] = flagName(e.Key) + " " + e.Msg
	}
	return cmdutil.FlagErrorf("%s", strings.Join(parts, "; "))
}
