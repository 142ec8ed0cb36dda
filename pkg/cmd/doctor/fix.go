package doctor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/doctor"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// Fixer runs one fix command line (doctor.Fixer through the SDK).
type Fixer interface {
	Run(ctx context.Context, line string) error
}

// fixRun is `doctor --fix`: show the plan, ask once (or --yes), run each
// command through the SDK in order, stopping at the first that fails, and
// check again. It returns the report after the fixes.
func fixRun(ctx context.Context, opts *DoctorOptions, cfg aws.Config, before doctor.Report, recheck func() (doctor.Report, error)) (doctor.Report, error) {
	out := opts.IO.ErrOut
	cs := opts.IO.ColorScheme()
	plan := doctor.FixPlan(before)
	if len(plan) == 0 {
		fmt.Fprintln(out, "Nothing for --fix to run: no failing check has a fix command (see the To fix lines).")
		return before, nil
	}
	fmt.Fprintf(out, "ssmkit doctor --fix will run %d %s:\n", len(plan), plural(len(plan), "command"))
	for i, s := range plan {
		fmt.Fprintf(out, "  %d. %s\n     %s\n", i+1, s.Command, cs.Gray("fixes "+strings.Join(s.Fixes, ", ")))
	}
	if !opts.Yes {
		ok, err := confirm(opts.IO, fmt.Sprintf("Run %s?", map[bool]string{true: "it", false: "them"}[len(plan) == 1]))
		if err != nil {
			return before, err
		}
		if !ok {
			fmt.Fprintln(out, "Nothing was changed.")
			return before, nil
		}
	}
	fixer := opts.Fixer
	if fixer == nil {
		fixer = doctor.NewFixer(cfg)
	}
	for i, s := range plan {
		if err := fixer.Run(ctx, s.Command); err != nil {
			fmt.Fprintf(out, "%s %s\n", cs.FailureIcon(), s.Command)
			if i+1 < len(plan) {
				fmt.Fprintf(out, "Stopped: %d later %s not run.\n", len(plan)-i-1, plural(len(plan)-i-1, "command was"))
			}
			return before, fmt.Errorf("fix %d of %d failed: %w", i+1, len(plan), err)
		}
		fmt.Fprintf(out, "%s %s\n", cs.SuccessIcon(), s.Command)
	}
	progress := opts.IO.StartProgress("checking again", 0)
	after, err := recheck()
	progress.Stop()
	if err != nil {
		return before, fmt.Errorf("checking again after the fixes: %w", err)
	}
	printChanges(opts.IO, before, after)
	return after, nil
}

// confirm asks a yes/no question on the terminal; only y or yes agree.
func confirm(ios *iostreams.IOStreams, question string) (bool, error) {
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// printChanges lists the checks whose status the fixes changed.
func printChanges(ios *iostreams.IOStreams, before, after doctor.Report) {
	cs := ios.ColorScheme()
	was := map[string]doctor.Status{}
	for _, inst := range before.Instances {
		for _, c := range inst.Checks {
			was[inst.ID+" "+c.ID] = c.Status
		}
	}
	changed := 0
	for _, inst := range after.Instances {
		for _, c := range inst.Checks {
			old, ok := was[inst.ID+" "+c.ID]
			if !ok || old == c.Status {
				continue
			}
			changed++
			icon := cs.SuccessIcon()
			if c.Status == doctor.Fail {
				icon = cs.FailureIcon()
			} else if c.Status == doctor.Warn {
				icon = cs.WarningIcon()
			}
			fmt.Fprintf(ios.ErrOut, "%s %s %s: %s → %s\n", icon, inst.ID, c.ID, old, c.Status)
		}
	}
	if changed == 0 {
		fmt.Fprintln(ios.ErrOut, "No check changed.")
	}
}
