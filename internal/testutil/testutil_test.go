package testutil

import (
	"strings"
	"testing"
)

func TestMissingTool(t *testing.T) {
	for _, c := range []struct {
		env                string
		wantFail, wantSkip bool
	}{
		{"", false, true},
		{"0", false, true},
		{"1", true, false},
	} {
		t.Setenv(EnvCI, c.env)
		r := &Recorder{TB: t}
		r.Run(func() { MissingTool(r, "terraform not found; %s", InstallTerraform) })
		failed, skipped, msg := r.Result()
		if failed != c.wantFail || skipped != c.wantSkip || !strings.Contains(msg, "terraform not found; install Terraform") {
			t.Errorf("%s=%q: failed=%v skipped=%v msg=%q", EnvCI, c.env, failed, skipped, msg)
		}
		if c.wantFail && !strings.Contains(msg, EnvCI+"=1") {
			t.Errorf("the failure does not say why it is not a skip: %q", msg)
		}
	}
}
