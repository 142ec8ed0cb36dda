// Package sandbox implements `ssmkit sandbox`: start, inspect and stop a
// local Session Manager (pkg/sandbox) that every other command, the AWS
// CLI and real SSM agents can talk to without an AWS account.
//
// `up` re-executes ssmkit as `sandbox serve` in a new session, detached from
// the terminal; the serve process publishes a state file in the state
// directory once it is ready, and `status`, `env` and `down` read it.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
)

// File names in the state directory.
const (
	// StateFile is the JSON State a ready sandbox publishes.
	StateFile = "sandbox.json"
	// LogFile receives the serve process's output.
	LogFile = "sandbox.log"
	// AgentConfigFile is the configuration for a real SSM Agent (with --tls).
	AgentConfigFile = "amazon-ssm-agent.json"
)

// State is what a running sandbox publishes in its state directory.
type State struct {
	URL         string          `json:"url"`
	PID         int             `json:"pid"`
	Region      string          `json:"region"`
	CA          string          `json:"ca,omitempty"`
	MotoURL     string          `json:"moto_url"`
	ProxyURL    string          `json:"proxy_url,omitempty"`
	StartedAt   time.Time       `json:"started_at"`
	AutoAttach  bool            `json:"auto_attach"`
	Env         []string        `json:"env"`
	AgentConfig string          `json:"agent_config,omitempty"`
	Log         string          `json:"log"`
	Instances   []InstanceState `json:"instances"`
}

// InstanceState is one instance the sandbox created at start.
type InstanceState struct {
	Name         string `json:"name"`
	ID           string `json:"id"`
	AgentVersion string `json:"agent_version"`
	PrivateIP    string `json:"private_ip"`
	// Health is healthy, offline, no-role or isolated.
	Health string `json:"health"`
	// Hybrid: an on-premises mi- node registered with an activation.
	Hybrid bool              `json:"hybrid,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// errNotRunning is returned when the state directory holds no live sandbox.
var errNotRunning = errors.New("no sandbox is running")

// NewCmdSandbox returns the `sandbox` command group.
func NewCmdSandbox(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox <command>",
		Short: "Run a local Session Manager for demos, tests and CI",
		Long: "The sandbox is a local stand-in for AWS Session Manager: one loopback endpoint serving\n" +
			"the SSM session APIs and ssmmessages, backed by a moto server for every other AWS API,\n" +
			"with emulated SSM agents on EC2 instances in moto. Every ssmkit command, the AWS CLI and\n" +
			"a real SSM Agent (with --tls) work against it unchanged.",
		Example: "  ssmkit sandbox up --instances 2 --instance broken:no-role\n" +
			"  eval \"$(ssmkit sandbox env)\"\n" +
			"  ssmkit start web-1\n" +
			"  ssmkit sandbox down",
	}
	cmd.AddCommand(NewCmdUp(f, nil))
	cmd.AddCommand(NewCmdServe(f, nil))
	cmd.AddCommand(NewCmdDown(f, nil))
	cmd.AddCommand(NewCmdStatus(f, nil))
	cmd.AddCommand(NewCmdEnv(f, nil))
	return cmd
}

// DefaultStateDir is $XDG_STATE_HOME/ssmkit/sandbox, else
// ~/.local/state/ssmkit/sandbox.
func DefaultStateDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ssmkit", "sandbox"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the state directory (set --state-dir or XDG_STATE_HOME): %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".local", "state", "ssmkit", "sandbox"), nil
}

// stateDirFlag adds --state-dir to cmd.
func stateDirFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "state-dir", "", "Directory for the sandbox's state, CA and logs (default $XDG_STATE_HOME/ssmkit/sandbox)")
}

// resolveStateDir fills in the default state directory.
func resolveStateDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	return DefaultStateDir(os.Getenv)
}

// ReadState reads the state file of dir. A missing file is errNotRunning.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", errNotRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the sandbox state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading the sandbox state %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

// liveState reads dir's state and checks that its serve process is alive;
// a stale state file (the process died) is removed.
func liveState(dir string) (*State, error) {
	st, err := ReadState(dir)
	if err != nil {
		return nil, err
	}
	if st.PID <= 0 || !processAlive(st.PID) {
		_ = os.Remove(filepath.Join(dir, StateFile))
		return nil, fmt.Errorf("%w in %s (the last one, pid %d, is gone)", errNotRunning, dir, st.PID)
	}
	return st, nil
}

// writeState publishes st atomically.
func writeState(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the sandbox state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, StateFile+".*")
	if err != nil {
		return fmt.Errorf("writing the sandbox state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the sandbox state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the sandbox state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, StateFile)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the sandbox state: %w", err)
	}
	return nil
}
