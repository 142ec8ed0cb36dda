package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"
)

// NonEmptyArgs adds to check (cobra.ExactArgs(1) and the like) that no
// argument is empty or blank — an empty quoted string or an unset shell variable —
// which would otherwise reach the API as an empty ID. what names one
// argument in the usage error (exit 2), e.g. "the session ID".
func NonEmptyArgs(check cobra.PositionalArgs, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return err
		}
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				if len(args) == 1 {
					return FlagErrorf("%s must not be empty", what)
				}
				return FlagErrorf("%s must not be empty (argument %d)", what, i+1)
			}
		}
		return nil
	}
}

// NonEmptyFlags returns a usage error for the first of the named string
// flags that was given an empty or blank value: an empty filter value
// would otherwise be dropped silently or reach the API.
func NonEmptyFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f != nil && f.Changed && strings.TrimSpace(f.Value.String()) == "" {
			return FlagErrorf("--%s must not be empty", n)
		}
	}
	return nil
}
