package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// The lines that mark ssmkit's block in an SSH config file.
const (
	blockBegin = "# BEGIN ssmkit (managed by `ssmkit ssh config --write`; edits inside are replaced)"
	blockEnd   = "# END ssmkit"
)

// ConfigOptions are the inputs of `ssmkit ssh config`.
type ConfigOptions struct {
	IO *iostreams.IOStreams
	// ProxyCommand returns the ProxyCommand line.
	ProxyCommand func() (string, error)
	// HomeDir returns the home directory (for ~/.ssh/config).
	HomeDir func() (string, error)

	// Write is --write: put the block into File.
	Write bool
	// File is --file; empty means ~/.ssh/config.
	File string
	// User is --user: the default login user for the block.
	User string
}

// NewCmdConfig returns the `ssh config` command.
func NewCmdConfig(f *cmdutil.Factory, runF func(*ConfigOptions) error) *cobra.Command {
	opts := &ConfigOptions{IO: f.IOStreams, HomeDir: os.UserHomeDir}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print or write the ~/.ssh/config block for ssh, scp, rsync and git over Session Manager",
		Long: "Print the OpenSSH configuration that sends connections to i-* and mi-* hosts through\n" +
			"ssmkit, with ssmkit's absolute path and the --profile, --region and --endpoint-url\n" +
			"given to this command. With --write, put it into ~/.ssh/config (or --file) between\n" +
			"marker lines: a block already there is replaced, nothing else is touched, the previous\n" +
			"file is kept as <file>.bak, and running it again changes nothing.",
		Example: "  ssmkit ssh config\n" +
			"  ssmkit --profile prod --region eu-west-1 ssh config --write --user ec2-user\n" +
			"  scp notes.txt ec2-user@i-0123456789abcdef0:/tmp/",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ProxyCommand == nil {
				opts.ProxyCommand = func() (string, error) { return ProxyCommand(f.Options, os.Executable) }
			}
			if runF != nil {
				return runF(opts)
			}
			return configRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Write, "write", false, "Write the block into the SSH config file")
	cmd.Flags().StringVar(&opts.File, "file", "", "SSH config file to write (default ~/.ssh/config)")
	cmd.Flags().StringVar(&opts.User, "user", "", "Default login user for these hosts")
	return cmd
}

// Block returns ssmkit's SSH config block, marker lines included.
func Block(proxyCommand, user string) string {
	var b strings.Builder
	b.WriteString(blockBegin + "\n")
	b.WriteString("Host i-* mi-*\n")
	b.WriteString("    ProxyCommand " + proxyCommand + "\n")
	if user != "" {
		b.WriteString("    User " + user + "\n")
	}
	b.WriteString(blockEnd + "\n")
	return b.String()
}

func configRun(opts *ConfigOptions) error {
	if strings.ContainsAny(opts.User, " \t\n\"'") {
		return cmdutil.FlagErrorf("--user %q is not a user name", opts.User)
	}
	proxy, err := opts.ProxyCommand()
	if err != nil {
		return err
	}
	block := Block(proxy, opts.User)
	if !opts.Write {
		_, err := fmt.Fprint(opts.IO.Out, block)
		return err
	}
	path := opts.File
	if path == "" {
		home, err := opts.HomeDir()
		if err != nil {
			return fmt.Errorf("finding ~/.ssh/config: %w; pass --file", err)
		}
		path = filepath.Join(home, ".ssh", "config")
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	updated, err := withBlock(old, block)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	cs := opts.IO.ColorScheme()
	if bytes.Equal(updated, old) {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s already has the ssmkit block\n", cs.SuccessIcon(), path)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	mode := fs.FileMode(0o600)
	if old != nil {
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := os.WriteFile(path+".bak", old, mode); err != nil {
			return fmt.Errorf("backing up %s: %w", path, err)
		}
	}
	// Write beside and rename: the config is never half-written.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-ssmkit-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(updated); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if old != nil {
		fmt.Fprintf(opts.IO.ErrOut, "%s Updated %s (previous version in %s.bak)\n", cs.SuccessIcon(), path, path)
	} else {
		fmt.Fprintf(opts.IO.ErrOut, "%s Created %s\n", cs.SuccessIcon(), path)
	}
	return nil
}

// withBlock returns config with block in place of ssmkit's marked block,
// or appended when there is none.
func withBlock(config []byte, block string) ([]byte, error) {
	s := string(config)
	begin := strings.Index(s, blockBegin)
	if begin < 0 {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if s != "" {
			s += "\n"
		}
		return []byte(s + block), nil
	}
	rest := s[begin:]
	end := strings.Index(rest, blockEnd)
	if end < 0 {
		return nil, fmt.Errorf("the ssmkit block has no %q line: fix the file by hand", blockEnd)
	}
	end += len(blockEnd)
	if end < len(rest) && rest[end] == '\n' {
		end++
	}
	return []byte(s[:begin] + block + rest[end:]), nil
}
