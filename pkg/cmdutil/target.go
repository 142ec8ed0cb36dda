package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/target"
)

// TargetHelp describes, for a command's long help, what a target may be.
const TargetHelp = "The target is an instance ID (i-…), a managed node ID (mi-…), an instance ARN, the Name\n" +
	"tag of one running instance, a hybrid node's name or computer name, tag:KEY=VALUE, a private\n" +
	"IP address or private DNS name. A name pattern with * or ? must match exactly one node and\n" +
	"needs --pick-one. Without a target on a terminal, ssmkit lists the managed nodes to pick from."

// Target is the target argument of a session command and its flag.
type Target struct {
	// Arg is what the user typed; empty means "let me pick".
	Arg string
	// PickOne is --pick-one: use the single node a pattern matches.
	PickOne bool
}

// AddFlags registers --pick-one on cmd.
func (t *Target) AddFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&t.PickOne, "pick-one", false, "Use the one node a name pattern (with * or ?) matches")
}

// Resolve returns the ID of the node t names, looking it up with c (see
// target.Resolver). Without Arg it offers the interactive picker when
// standard input and standard error are a terminal, and is a usage error
// otherwise. An ambiguous or malformed target is a usage error (exit 2);
// no match is a failure (exit 1).
func (t Target) Resolve(ctx context.Context, ios *iostreams.IOStreams, c session.Clients, logf func(string, ...any)) (string, error) {
	r := c.Resolver(logf)
	if t.Arg == "" {
		tty, ok := ios.In.(*os.File)
		if !ok || !ios.IsStdinTTY() || !ios.IsStderrTTY() {
			return "", FlagErrorf("no target given: name a node (see --help), or run on a terminal to pick one")
		}
		if c.Nodes == nil {
			return "", FlagErrorf("no target given")
		}
		nodes, err := target.ListNodes(ctx, c.Nodes, c.EC2, nil)
		if err != nil {
			return "", err
		}
		n, err := target.Pick(tty, ios.ErrOut, nodes)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(ios.ErrOut, "Target: %s\n", n.Label())
		return n.ID, nil
	}
	n, err := r.Resolve(ctx, t.Arg, target.ResolveOptions{PickOne: t.PickOne})
	if errors.Is(err, target.ErrAmbiguous) || errors.Is(err, target.ErrInvalid) {
		return "", FlagErrorWrap(err)
	}
	return n.ID, err
}
