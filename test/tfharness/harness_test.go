package tfharness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mirror(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, providerDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveSource(t *testing.T) {
	good, other := mirror(t), mirror(t)
	empty := t.TempDir()
	tests := []struct {
		name       string
		env        map[string]string
		defaultDir string
		want       Source
		wantErr    []string
	}{
		{name: "env mirror wins", env: map[string]string{EnvPluginDir: good}, defaultDir: other, want: Source{MirrorDir: good}},
		{name: "default mirror", defaultDir: other, want: Source{MirrorDir: other}},
		{name: "bad env falls back to default", env: map[string]string{EnvPluginDir: empty}, defaultDir: other, want: Source{MirrorDir: other}},
		{name: "registry when allowed", env: map[string]string{EnvAllowRegistry: "1"}, defaultDir: empty, want: Source{}},
		{
			name:       "nothing usable names every gap",
			env:        map[string]string{EnvPluginDir: empty},
			defaultDir: filepath.Join(empty, "nope"),
			wantErr:    []string{EnvPluginDir + "=" + empty, filepath.Join(empty, "nope"), EnvAllowRegistry + "=1"},
		},
		{name: "unset env is named", defaultDir: empty, wantErr: []string{"$" + EnvPluginDir + " is unset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveSource(env(tt.env), tt.defaultDir)
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, ErrNoProviderSource) {
					t.Fatalf("err = %v, want ErrNoProviderSource", err)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveSource: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCLIConfig(t *testing.T) {
	withMirror := CLIConfig(Source{MirrorDir: "/m"}, "/c")
	for _, s := range []string{`filesystem_mirror`, `path    = "/m"`, `"registry.terraform.io/hashicorp/*"`} {
		if !strings.Contains(withMirror, s) {
			t.Errorf("mirror config lacks %q:\n%s", s, withMirror)
		}
	}
	if strings.Contains(withMirror, "direct") {
		t.Errorf("mirror config must not fall back to direct installation:\n%s", withMirror)
	}
	if strings.Contains(withMirror, "plugin_cache_dir") {
		t.Errorf("mirror config must not use the plugin cache (parallel inits race on it):\n%s", withMirror)
	}
	registry := CLIConfig(Source{}, "/c")
	if !strings.Contains(registry, `plugin_cache_dir   = "/c"`) {
		t.Errorf("registry config lacks the shared cache:\n%s", registry)
	}
	if strings.Contains(registry, "provider_installation") {
		t.Errorf("registry config should use the default installation:\n%s", registry)
	}
}
