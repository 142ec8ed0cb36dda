package plugin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// InstallOptions are the inputs of `ssmkit plugin install`.
type InstallOptions struct {
	IO *iostreams.IOStreams
	// Executable returns the path of the running ssmkit.
	Executable func() (string, error)
	// HomeDir returns the user's home directory.
	HomeDir func() (string, error)
	// Getenv reads PATH.
	Getenv func(string) string

	// Dir is --dir; empty picks the directory of ssmkit when it is
	// writable, else ~/.local/bin.
	Dir string
	// Force is --force: replace a session-manager-plugin that is not
	// ssmkit (it is kept beside as session-manager-plugin.orig).
	Force bool
}

// NewCmdInstall returns the `plugin install` command.
func NewCmdInstall(f *cmdutil.Factory, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{IO: f.IOStreams, Executable: os.Executable, HomeDir: os.UserHomeDir, Getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Link session-manager-plugin to ssmkit, on PATH, for the AWS CLI",
		Long: "Create a link named session-manager-plugin to this ssmkit binary, so that `aws ssm\n" +
			"start-session` uses ssmkit. The link goes next to ssmkit when that directory is writable,\n" +
			"else in ~/.local/bin, or in --dir. An existing session-manager-plugin that is not ssmkit is\n" +
			"left alone unless --force (it is then kept as session-manager-plugin.orig).",
		Example: "  ssmkit plugin install\n" +
			"  sudo ssmkit plugin install --dir /usr/local/bin --force",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return installRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "Directory to put the link in")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "Replace a session-manager-plugin that is not ssmkit")
	return cmd
}

func installRun(opts *InstallOptions) error {
	exe, err := opts.Executable()
	if err != nil {
		return fmt.Errorf("finding the ssmkit executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("finding the ssmkit executable: %w", err)
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = defaultDir(exe, opts.HomeDir); err != nil {
			return err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	link := filepath.Join(dir, linkName(runtime.GOOS))
	cs := opts.IO.ColorScheme()
	w := opts.IO.ErrOut

	switch cur, err := os.Lstat(link); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("checking %s: %w", link, err)
	case isLinkTo(link, cur, exe):
		fmt.Fprintf(w, "%s %s already points to %s\n", cs.SuccessIcon(), link, exe)
		reportPath(w, opts, dir, link)
		return nil
	case !opts.Force:
		return fmt.Errorf("%s exists and is not ssmkit (%s); pass --force to replace it (it is kept as %s.orig), or --dir to link elsewhere", link, describe(link), Name)
	default:
		backup := link + ".orig"
		if err := os.Rename(link, backup); err != nil {
			return fmt.Errorf("moving %s aside: %w", link, err)
		}
		fmt.Fprintf(w, "%s Moved the previous %s to %s\n", cs.WarningIcon(), link, backup)
	}
	how := "Linked"
	if err := os.Symlink(exe, link); err != nil {
		// No symlinks here (some file systems): a copy answers the same.
		if cerr := copyFile(exe, link); cerr != nil {
			return fmt.Errorf("linking %s to %s: %w", link, exe, err)
		}
		how = "Copied ssmkit to"
	}
	if how == "Linked" {
		fmt.Fprintf(w, "%s Linked %s → %s\n", cs.SuccessIcon(), link, exe)
	} else {
		fmt.Fprintf(w, "%s %s %s\n", cs.SuccessIcon(), how, link)
	}
	reportPath(w, opts, dir, link)
	return nil
}

// linkName is the file name the AWS CLI runs: with .exe on Windows.
func linkName(goos string) string {
	if goos == "windows" {
		return Name + ".exe"
	}
	return Name
}

// defaultDir is ssmkit's own directory when it is writable, else
// ~/.local/bin.
func defaultDir(exe string, home func() (string, error)) (string, error) {
	dir := filepath.Dir(exe)
	if writable(dir) {
		return dir, nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("%s is not writable and there is no home directory: pass --dir", dir)
	}
	return filepath.Join(h, ".local", "bin"), nil
}

// writable reports whether a file can be created in dir, by creating (and
// removing) one: what install is about to do, on every system.
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".ssmkit-write-check-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return true
}

// isLinkTo reports whether link (with Lstat info fi) is ssmkit: a symlink
// resolving to exe, or the same file.
func isLinkTo(link string, fi fs.FileInfo, exe string) bool {
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(link)
		return err == nil && target == exe
	}
	ei, err := os.Stat(exe)
	return err == nil && os.SameFile(fi, ei)
}

// describe says what an existing session-manager-plugin is.
func describe(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" && !strings.Contains(v, "\n") {
		return "version " + v
	}
	return "not a program ssmkit recognises"
}

// reportPath warns when the AWS CLI would not find the link.
func reportPath(w io.Writer, opts *InstallOptions, dir, link string) {
	cs := opts.IO.ColorScheme()
	path := opts.Getenv("PATH")
	onPath := false
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if abs, err := filepath.Abs(d); err == nil && abs == dir {
			onPath = true
			break
		}
		// An earlier session-manager-plugin wins.
		if p := filepath.Join(d, Name); p != link {
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && !sameTarget(p, link) {
				fmt.Fprintf(w, "%s %s comes first on PATH; the AWS CLI will use it, not ssmkit\n", cs.WarningIcon(), p)
				return
			}
		}
	}
	if !onPath {
		fmt.Fprintf(w, "%s %s is not on PATH; add it so the AWS CLI finds the plugin:\n  export PATH=\"%s:$PATH\"\n", cs.WarningIcon(), dir, dir)
		return
	}
	fmt.Fprintf(w, "The AWS CLI now uses ssmkit: aws ssm start-session --target <instance-id>\n")
}

// sameTarget reports whether two paths resolve to the same file.
func sameTarget(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}
