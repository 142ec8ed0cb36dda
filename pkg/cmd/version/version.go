// Package version implements `ssmkit version` and holds the build
// information that the linker stamps into the binary:
//
//	go build -ldflags "\
//	  -X github.com/ssmkit/ssmkit/pkg/cmd/version.version=v1.2.3 \
//	  -X github.com/ssmkit/ssmkit/pkg/cmd/version.commit=$(git rev-parse HEAD) \
//	  -X github.com/ssmkit/ssmkit/pkg/cmd/version.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
//	  ./cmd/ssmkit
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// Build information, set with -ldflags -X and never written at run time.
// They are variables only because -X cannot set constants.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// shortCommit is how much of the commit the one-line form shows.
const shortCommit = 12

// Info describes a build of ssmkit.
type Info struct {
	// Version is the release version, "dev" for untagged builds.
	Version string `json:"version"`
	// Commit is the full git commit, "" when unknown.
	Commit string `json:"commit"`
	// BuildDate is when the binary was built (RFC 3339), "" when unknown.
	BuildDate string `json:"buildDate"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Current returns this binary's build information. What -ldflags did not
// set is taken from the Go build information where available (`go install
// …@v1.2.3` records the module version, builds from a checkout record the
// VCS revision and time).
func Current() Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		BuildDate: date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if info.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.BuildDate == "" {
				info.BuildDate = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit == "" && info.Commit != "" {
		info.Commit += "-dirty"
	}
	return info
}

// String renders the one-line form used by `ssmkit version` and
// `ssmkit --version`, leaving out what is unknown:
//
//	ssmkit version v1.2.3 (commit 0123456789ab, built 2025-06-01T12:00:00Z, go1.26.8 linux/amd64)
func (i Info) String() string {
	var parts []string
	if i.Commit != "" {
		c := i.Commit
		if len(c) > shortCommit && !strings.HasSuffix(c, "-dirty") {
			c = c[:shortCommit]
		}
		parts = append(parts, "commit "+c)
	}
	if i.BuildDate != "" {
		parts = append(parts, "built "+i.BuildDate)
	}
	parts = append(parts, i.GoVersion+" "+i.Platform)
	return fmt.Sprintf("ssmkit version %s (%s)", i.Version, strings.Join(parts, ", "))
}

// VersionOptions are the inputs of `ssmkit version`.
type VersionOptions struct {
	IO   *iostreams.IOStreams
	Info Info
	// JSON is --output json.
	JSON bool
}

// NewCmdVersion returns the `version` command. runF replaces the run
// function in tests.
func NewCmdVersion(f *cmdutil.Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IOStreams}
	return &cobra.Command{
		Use:   "version",
		Short: "Show the version of ssmkit",
		Long: "Show the version, commit and build date of ssmkit and the Go version it was built with.\n" +
			"With --output json the same fields are printed as a JSON object.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Info = Current()
			opts.JSON = f.Options.JSON()
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
}

func versionRun(opts *VersionOptions) error {
	if opts.JSON {
		return cmdutil.PrintJSON(opts.IO, opts.Info)
	}
	if _, err := fmt.Fprintln(opts.IO.Out, opts.Info.String()); err != nil {
		return fmt.Errorf("writing version: %w", err)
	}
	return nil
}
