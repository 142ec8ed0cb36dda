// Package tfharness runs terraform for ssmkit's tests without reaching the Terraform registry
// unless asked to.
//
// Every terraform process gets a CLI configuration (TF_CLI_CONFIG_FILE) written by New: providers
// come from a filesystem mirror ($SSMKIT_TF_PLUGIN_DIR, else /opt/tf-plugins) with no direct
// fallback, or from the registry when no mirror exists and SSMKIT_TF_REGISTRY=1 allows downloads.
// With a mirror, terraform symlinks the unpacked provider straight from it, so nothing is
// copied per test. With the registry, all processes share one plugin cache under os.TempDir,
// filled once under a file lock, so the provider is downloaded once per machine.
//
// The cache is deliberately not combined with a mirror: terraform then re-creates the cache's
// link to the mirror on every init, and parallel inits race on it ("Failed to install
// provider ... after installing"), which this package's first version hit.
package tfharness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	test_structure "github.com/gruntwork-io/terratest/modules/test-structure"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

const (
	// EnvPluginDir names a filesystem mirror (unpacked or packed layout) to install providers from.
	EnvPluginDir = "SSMKIT_TF_PLUGIN_DIR"
	// EnvAllowRegistry set to 1 lets terraform download providers from the registry when no
	// mirror exists. It is opt-in so that an offline machine skips instead of hanging on init.
	EnvAllowRegistry = "SSMKIT_TF_REGISTRY"
	// DefaultPluginDir is the mirror used when EnvPluginDir is unset.
	DefaultPluginDir = "/opt/tf-plugins"
	// providerDir is the path, inside a mirror, of the only provider the modules need.
	providerDir = "registry.terraform.io/hashicorp/aws"
	// cacheDirName is the shared plugin cache under os.TempDir.
	cacheDirName = "ssmkit-tf-plugin-cache"
)

// ErrNoProviderSource means neither a mirror nor the registry may be used.
var ErrNoProviderSource = errors.New("no terraform provider source")

// Source says where terraform installs providers from.
type Source struct {
	// MirrorDir is the filesystem mirror, or "" for the registry.
	MirrorDir string
}

// String describes the source for test logs.
func (s Source) String() string {
	if s.MirrorDir == "" {
		return "registry"
	}
	return "mirror " + s.MirrorDir
}

// ResolveSource picks the provider source from the environment lookup getenv:
// $SSMKIT_TF_PLUGIN_DIR, then defaultDir, each only when it holds hashicorp/aws; then the
// registry when SSMKIT_TF_REGISTRY=1. The error names everything that was missing.
func ResolveSource(getenv func(string) string, defaultDir string) (Source, error) {
	var missing []string
	if dir := getenv(EnvPluginDir); dir != "" {
		if hasProvider(dir) {
			return Source{MirrorDir: dir}, nil
		}
		missing = append(missing, fmt.Sprintf("$%s=%s has no %s", EnvPluginDir, dir, providerDir))
	} else {
		missing = append(missing, fmt.Sprintf("$%s is unset", EnvPluginDir))
	}
	if defaultDir != "" {
		if hasProvider(defaultDir) {
			return Source{MirrorDir: defaultDir}, nil
		}
		missing = append(missing, fmt.Sprintf("%s has no %s", defaultDir, providerDir))
	}
	if getenv(EnvAllowRegistry) == "1" {
		return Source{}, nil
	}
	missing = append(missing, fmt.Sprintf("registry downloads are off (set %s=1 to allow them)", EnvAllowRegistry))
	return Source{}, fmt.Errorf("%w: %s", ErrNoProviderSource, strings.Join(missing, "; "))
}

func hasProvider(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, providerDir))
	return err == nil && fi.IsDir()
}

// CLIConfig renders the terraform CLI configuration for src; cacheDir is used only for the
// registry (see the package comment).
func CLIConfig(src Source, cacheDir string) string {
	var b strings.Builder
	b.WriteString("disable_checkpoint = true\n")
	if src.MirrorDir == "" {
		fmt.Fprintf(&b, "plugin_cache_dir   = %q\n", cacheDir)
	} else {
		// No direct block: with a mirror, terraform must never fall back to the network.
		fmt.Fprintf(&b, "\nprovider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [\"registry.terraform.io/hashicorp/*\"]\n  }\n}\n", src.MirrorDir)
	}
	return b.String()
}

// Harness runs terraform processes with a generated CLI configuration.
type Harness struct {
	// Binary is the terraform executable.
	Binary string
	// Source is where providers come from.
	Source Source
	// CLIConfigFile is the generated CLI configuration.
	CLIConfigFile string
	// CacheDir is the shared plugin cache, used with the registry only.
	CacheDir string
}

// New finds terraform and a provider source and writes a CLI configuration into a test
// temp dir. It skips t, naming what is missing and how to install it, when terraform or every
// provider source is unavailable — or fails t with SSMKIT_CI=1 (testutil.MissingTool).
func New(t testing.TB) *Harness {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		testutil.MissingTool(t, "terraform not found in PATH: %v; %s", err, testutil.InstallTerraform)
	}
	src, err := ResolveSource(os.Getenv, DefaultPluginDir)
	if err != nil {
		testutil.MissingTool(t, "%v; %s", err, testutil.InstallTerraform)
	}
	cache := filepath.Join(os.TempDir(), cacheDirName)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("creating plugin cache %s: %v", cache, err)
	}
	cfg := filepath.Join(t.TempDir(), "terraform.rc")
	if err := os.WriteFile(cfg, []byte(CLIConfig(src, cache)), 0o644); err != nil {
		t.Fatalf("writing terraform CLI config: %v", err)
	}
	h := &Harness{Binary: bin, Source: src, CLIConfigFile: cfg, CacheDir: cache}
	if src.MirrorDir != "" {
		return h
	}
	if err := h.warmCache(t); err != nil {
		t.Fatalf("warming terraform plugin cache %s from %s: %v", cache, src, err)
	}
	return h
}

// Env returns the environment every terraform process gets.
func (h *Harness) Env() map[string]string {
	return map[string]string{
		"TF_CLI_CONFIG_FILE": h.CLIConfigFile,
		"TF_IN_AUTOMATION":   "1",
		"TF_INPUT":           "0",
		"CHECKPOINT_DISABLE": "1",
	}
}

// Command builds a terraform command in dir with the harness environment plus extra
// "KEY=VALUE" entries.
func (h *Harness) Command(ctx context.Context, dir string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.Binary, args...)
	cmd.Dir = dir
	env := os.Environ()
	for k, v := range h.Env() {
		env = append(env, k+"="+v)
	}
	cmd.Env = append(env, extraEnv...)
	return cmd
}

// Run runs terraform in dir and returns its combined output; the error includes the output.
func (h *Harness) Run(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := h.Command(ctx, dir, nil, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("terraform %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out), nil
}

// Options returns terratest options for dir with the harness environment, the given
// variables and extra environment (for example emulator credentials).
func (h *Harness) Options(dir string, vars map[string]any, extraEnv map[string]string) *terraform.Options {
	env := h.Env()
	for k, v := range extraEnv {
		env[k] = v
	}
	return &terraform.Options{
		TerraformBinary: h.Binary,
		TerraformDir:    dir,
		Vars:            vars,
		EnvVars:         env,
		NoColor:         true,
		Lock:            true,
	}
}

// Version returns terraform's version, for example "1.11.4".
func (h *Harness) Version(ctx context.Context) (string, error) {
	out, err := h.Command(ctx, "", nil, "version", "-json").Output()
	if err != nil {
		return "", fmt.Errorf("running terraform version: %w", err)
	}
	var v struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("parsing terraform version output: %w", err)
	}
	return v.Version, nil
}

// warmCache installs the aws provider into the shared cache once, under a file lock: terraform
// does not guarantee that concurrent inits can fill one cache safely.
func (h *Harness) warmCache(t testing.TB) error {
	lock, err := os.OpenFile(filepath.Join(h.CacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	if hasProvider(h.CacheDir) {
		return nil
	}
	dir := t.TempDir()
	const cfg = `terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("writing warm-up config: %w", err)
	}
	_, err = h.Run(context.Background(), dir, "init", "-backend=false", "-input=false", "-no-color")
	return err
}

// RepoRoot returns the directory holding go.mod, searching up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getting working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CopyToTemp copies root (without hidden files, state or tfvars) into a test temp dir that
// is removed when the test ends, and returns the copy of root/rel. Relative module sources
// inside root keep working.
func CopyToTemp(t testing.TB, root, rel string) string {
	t.Helper()
	return test_structure.CopyTerraformFolderToDest(t, root, rel, t.TempDir())
}
