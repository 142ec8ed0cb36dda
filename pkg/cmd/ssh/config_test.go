package ssh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

func TestProxyCommand(t *testing.T) {
	exe := func() (string, error) { return "/opt/my tools/ssmkit", nil }
	got, err := ProxyCommand(cmdutil.GlobalOptions{Profile: "prod", Region: "eu-west-1", EndpointURL: "http://127.0.0.1:4566/%x"}, exe)
	want := `'/opt/my tools/ssmkit' --profile prod --region eu-west-1 --endpoint-url 'http://127.0.0.1:4566/%%x' ssh %h --port %p`
	if err != nil || got != want {
		t.Errorf("ProxyCommand = %q, %v; want %q", got, err, want)
	}
	got, _ = ProxyCommand(cmdutil.GlobalOptions{}, func() (string, error) { return "/usr/local/bin/ssmkit", nil })
	if got != "/usr/local/bin/ssmkit ssh %h --port %p" {
		t.Errorf("ProxyCommand = %q", got)
	}
}

func configOpts(t *testing.T, home, proxy string) (*ConfigOptions, *iostreams.IOStreams) {
	ios, _, _, _ := iostreams.Test()
	return &ConfigOptions{IO: ios, HomeDir: func() (string, error) { return home, nil },
		ProxyCommand: func() (string, error) { return proxy, nil }}, ios
}

func TestSSHConfigPrint(t *testing.T) {
	opts, ios := configOpts(t, t.TempDir(), "/usr/bin/ssmkit ssh %h --port %p")
	opts.User = "ec2-user"
	if err := configRun(opts); err != nil {
		t.Fatal(err)
	}
	want := blockBegin + "\nHost i-* mi-*\n    ProxyCommand /usr/bin/ssmkit ssh %h --port %p\n    User ec2-user\n" + blockEnd + "\n"
	if got := ios.Out.(interface{ String() string }).String(); got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	opts.User = "bad user"
	if err := configRun(opts); err == nil {
		t.Error("a user with a space was accepted")
	}
}

func TestSSHConfigWrite(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".ssh", "config")
	write := func(proxy string) string {
		t.Helper()
		opts, ios := configOpts(t, home, proxy)
		opts.Write = true
		if err := configRun(opts); err != nil {
			t.Fatal(err)
		}
		return ios.ErrOut.(interface{ String() string }).String()
	}
	// No file yet: created, private.
	if msg := write("/a/ssmkit ssh %h --port %p"); !strings.Contains(msg, "Created "+path) {
		t.Errorf("message %q", msg)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v %v", fi, err)
	}
	// The user's own entries stay; the block goes after them.
	mine := "Host bastion\n    HostName 10.0.0.1\n"
	first, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte(mine), first...), 0o600)
	os.WriteFile(path, []byte(mine+"\n"+string(first)+"Host *\n    ServerAliveInterval 30"), 0o600) // no final newline
	before, _ := os.ReadFile(path)
	if msg := write("/a/ssmkit ssh %h --port %p"); !strings.Contains(msg, "already has the ssmkit block") {
		t.Errorf("second write: %q", msg)
	}
	if now, _ := os.ReadFile(path); string(now) != string(before) {
		t.Fatalf("an unchanged block rewrote the file:\n%s", now)
	}
	// A new ProxyCommand replaces the block in place; a backup is kept.
	if msg := write("/b/ssmkit --profile p ssh %h --port %p"); !strings.Contains(msg, "Updated "+path) || !strings.Contains(msg, path+".bak") {
		t.Errorf("update: %q", msg)
	}
	now, _ := os.ReadFile(path)
	want := mine + "\n" + Block("/b/ssmkit --profile p ssh %h --port %p", "") + "Host *\n    ServerAliveInterval 30"
	if string(now) != want {
		t.Errorf("config =\n%s\nwant\n%s", now, want)
	}
	if bak, _ := os.ReadFile(path + ".bak"); string(bak) != string(before) {
		t.Errorf("backup =\n%s", bak)
	}
	if strings.Count(string(now), blockBegin) != 1 {
		t.Error("two blocks")
	}
	// A block without its end marker is not guessed at.
	os.WriteFile(path, []byte(mine+blockBegin+"\nHost i-*\n"), 0o600)
	opts, _ := configOpts(t, home, "/c/ssmkit")
	opts.Write = true
	if err := configRun(opts); err == nil || !strings.Contains(err.Error(), "fix the file by hand") {
		t.Errorf("err = %v", err)
	}
	if now, _ := os.ReadFile(path); string(now) != mine+blockBegin+"\nHost i-*\n" {
		t.Error("a broken file was changed")
	}
}
