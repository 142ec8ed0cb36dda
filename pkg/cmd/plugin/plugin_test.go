package plugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

const resp = `{"SessionId":"s-1","TokenValue":"tok","StreamUrl":"wss://x/v1/data-channel/s-1"}`

func TestParseArgs(t *testing.T) {
	env := map[string]string{"AWS_SSM_START_SESSION_RESPONSE": resp}
	getenv := func(k string) string { return env[k] }
	unset := func(k string) error { delete(env, k); return nil }
	req := `{"Target":"i-0123456789abcdef0","DocumentName":"AWS-StartSSHSession","Parameters":{"portNumber":["22"]}}`

	inv, err := ParseArgs([]string{"AWS_SSM_START_SESSION_RESPONSE", "eu-west-1", "StartSession", "prof", req, "https://ssm.eu-west-1.amazonaws.com"}, getenv, unset)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Response.SessionID != "s-1" || inv.Response.TokenValue != "tok" || inv.Region != "eu-west-1" || inv.Profile != "prof" ||
		inv.Request.Target != "i-0123456789abcdef0" || inv.Request.Parameters["portNumber"][0] != "22" ||
		inv.Endpoint != "https://ssm.eu-west-1.amazonaws.com" || inv.Legacy {
		t.Errorf("invocation %+v", inv)
	}
	if _, ok := env["AWS_SSM_START_SESSION_RESPONSE"]; ok {
		t.Error("the response variable was not removed from the environment")
	}
	// Old CLIs: the response itself, and only four arguments.
	inv, err = ParseArgs([]string{resp, "us-east-1", "StartSession", ""}, getenv, unset)
	if err != nil || !inv.Legacy || inv.Response.SessionID != "s-1" {
		t.Errorf("legacy = %+v, %v", inv, err)
	}
	var fe *cmdutil.FlagError
	for _, bad := range [][]string{
		{"x", "y", "z"},
		{"not json", "r", "StartSession", ""},
		{`{"SessionId":"s"}`, "r", "StartSession", ""},
		{resp, "r", "ResumeSession", ""},
		{resp, "r", "StartSession", "", "{bad"},
		{"AWS_SSM_START_SESSION_RESPONSE", "r", "StartSession", ""}, // already unset
	} {
		if _, err := ParseArgs(bad, getenv, unset); !errors.As(err, &fe) {
			t.Errorf("%q: err = %v, want a usage error", bad, err)
		}
	}
}

func TestPluginVersionAndBareRun(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{args: []string{"--version"}, want: "1.2.677.0\n"},
		{args: nil, want: "The Session Manager plugin was installed successfully"},
	} {
		ios, _, stdout, _ := iostreams.Test()
		cmd := NewCmdPlugin(&cmdutil.Factory{IOStreams: ios}, nil)
		cmd.SetArgs(tt.args)
		cmd.SetOut(&bytes.Buffer{})
		if err := cmd.Execute(); err != nil || !strings.Contains(stdout.String(), tt.want) {
			t.Errorf("%q: %q, %v", tt.args, stdout.String(), err)
		}
	}
}

func TestIsAWSEndpoint(t *testing.T) {
	for u, want := range map[string]bool{
		"https://ssm.us-east-1.amazonaws.com":          true,
		"https://ssm.cn-north-1.amazonaws.com.cn":      true,
		"https://ssm-fips.us-gov-west-1.amazonaws.com": true,
		"http://127.0.0.1:4566":                        false,
		"https://vpce-1.ssm.example.internal":          false,
	} {
		if got := isAWSEndpoint(u); got != want {
			t.Errorf("isAWSEndpoint(%q) = %v", u, got)
		}
	}
}

func installOpts(t *testing.T, exe, dir, path string) (*InstallOptions, *bytes.Buffer) {
	ios, _, _, stderr := iostreams.Test()
	return &InstallOptions{
		IO: ios, Dir: dir,
		Executable: func() (string, error) { return exe, nil },
		HomeDir:    func() (string, error) { return t.TempDir(), nil },
		Getenv:     func(string) string { return path },
	}, stderr
}

func TestInstall(t *testing.T) {
	root := t.TempDir()
	exe := filepath.Join(root, "ssmkit")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho 1.2.677.0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bin")
	link := filepath.Join(dir, Name)

	opts, stderr := installOpts(t, exe, dir, dir)
	if err := installRun(opts); err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.EvalSymlinks(link); got != exe || !strings.Contains(stderr.String(), "Linked "+link+" → "+exe) ||
		!strings.Contains(stderr.String(), "The AWS CLI now uses ssmkit") {
		t.Fatalf("link → %q; stderr %q", got, stderr.String())
	}
	// Again: nothing to do.
	opts, stderr = installOpts(t, exe, dir, dir)
	if err := installRun(opts); err != nil || !strings.Contains(stderr.String(), "already points to") {
		t.Fatalf("second install: %v, %q", err, stderr.String())
	}

	// A real plugin is left alone without --force, and kept with it.
	other := filepath.Join(root, "other")
	os.MkdirAll(other, 0o755)
	real := filepath.Join(other, Name)
	os.WriteFile(real, []byte("#!/bin/sh\necho 1.2.650.0\n"), 0o755)
	opts, _ = installOpts(t, exe, other, "/usr/bin")
	err := installRun(opts)
	if err == nil || !strings.Contains(err.Error(), "exists and is not ssmkit (version 1.2.650.0); pass --force") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(real); !strings.Contains(string(b), "1.2.650.0") {
		t.Fatal("the real plugin was touched")
	}
	opts, stderr = installOpts(t, exe, other, "/usr/bin")
	opts.Force = true
	if err := installRun(opts); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(real + ".orig"); !strings.Contains(string(b), "1.2.650.0") {
		t.Error("the real plugin was not kept")
	}
	if got, _ := filepath.EvalSymlinks(real); got != exe {
		t.Errorf("link → %q", got)
	}
	if !strings.Contains(stderr.String(), other+" is not on PATH") || !strings.Contains(stderr.String(), "Moved the previous") {
		t.Errorf("stderr %q", stderr.String())
	}

	// A plugin earlier on PATH shadows the link.
	os.Rename(real+".orig", real+".tmp")
	os.Remove(real)
	os.Rename(real+".tmp", real)
	opts, stderr = installOpts(t, exe, dir, other+string(os.PathListSeparator)+dir)
	if err := installRun(opts); err != nil || !strings.Contains(stderr.String(), filepath.Join(other, Name)+" comes first on PATH") {
		t.Errorf("shadowed: %v, %q", err, stderr.String())
	}
}

// TestClientsUseTheCLIsEndpoint: ResumeSession and TerminateSession go to
// the SSM endpoint the AWS CLI passed, in its region.
func TestClientsUseTheCLIsEndpoint(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	ios, _, _, _ := iostreams.Test()
	c, err := clientsFor(&cmdutil.Factory{IOStreams: ios})(context.Background(), "eu-west-3", "", "http://127.0.0.1:4566")
	if err != nil {
		t.Fatal(err)
	}
	o := c.SSM.(*ssm.Client).Options()
	if aws.ToString(o.BaseEndpoint) != "http://127.0.0.1:4566" || o.Region != "eu-west-3" || c.KMS == nil {
		t.Errorf("SSM endpoint %q region %q, KMS %v", aws.ToString(o.BaseEndpoint), o.Region, c.KMS)
	}
}

func TestLinkName(t *testing.T) {
	if got := linkName("windows"); got != "session-manager-plugin.exe" {
		t.Errorf("linkName(windows) = %q", got)
	}
	if got := linkName("linux"); got != "session-manager-plugin" {
		t.Errorf("linkName(linux) = %q", got)
	}
}

// TestWritable: writable creates and removes a file, so it answers for the
// user actually running (root included) and leaves nothing behind.
func TestWritable(t *testing.T) {
	dir := t.TempDir()
	if !writable(dir) {
		t.Errorf("writable(%s) = false", dir)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("writable left %d files behind", len(ents))
	}
	if writable(filepath.Join(dir, "missing")) {
		t.Error("writable(a missing directory) = true")
	}
}
