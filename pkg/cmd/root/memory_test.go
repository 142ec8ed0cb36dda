package root

import (
	"errors"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// gcPercent is the runtime's current GOGC.
func gcPercent(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime/metrics has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

// keepGCPercent restores the test process's GC goal after t.
func keepGCPercent(t *testing.T, start int) {
	t.Helper()
	old := debug.SetGCPercent(start)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func TestTuneSessionMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int // GOGC afterwards; the test starts at 137
	}{
		{"no user setting", nil, sessionGCPercent},
		{"empty GOGC is unset", map[string]string{"GOGC": ""}, sessionGCPercent},
		{"user GOGC wins", map[string]string{"GOGC": "200"}, 137},
		{"user GOGC=off wins", map[string]string{"GOGC": "off"}, 137},
		{"user GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "64MiB"}, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepGCPercent(t, 137)
			changed := tuneSessionMemory(fakeEnv(tc.env))
			if got := gcPercent(t); got != tc.want {
				t.Errorf("GOGC after tuneSessionMemory = %d, want %d", got, tc.want)
			}
			if changed != (tc.want != 137) {
				t.Errorf("tuneSessionMemory reported changed=%v", changed)
			}
		})
	}
}

// TestSessionMemoryBeforeRun: the wrapped command runs with the session
// goal already set, and returns what the command returned.
func TestSessionMemoryBeforeRun(t *testing.T) {
	keepGCPercent(t, 100)
	seen := -1
	c := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error {
		seen = gcPercent(t)
		return errBoom
	}}
	withSessionMemory(c, fakeEnv(nil))
	if err := c.RunE(c, nil); err != errBoom {
		t.Fatalf("RunE returned %v, want the command's error", err)
	}
	if seen != sessionGCPercent {
		t.Errorf("the command ran with GOGC %d, want %d", seen, sessionGCPercent)
	}
}

var errBoom = errors.New("boom")

// TestSessionCommandsUseSessionMemory: the commands that move a session's
// bytes have the session GC goal, and no other command does.
func TestSessionCommandsUseSessionMemory(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := NewCmdRoot(NewFactory(ios, fakeEnv(nil)))
	var got []string
	for _, c := range cmd.Commands() {
		if c.Annotations[sessionMemoryAnnotation] != "" {
			got = append(got, c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Annotations[sessionMemoryAnnotation] != "" {
				t.Errorf("%s has the session GC goal; only whole session commands should", sub.CommandPath())
			}
		}
	}
	slices.Sort(got)
	want := []string{"cp", "exec", "forward", "plugin", "ssh", "start"}
	if !slices.Equal(got, want) {
		t.Errorf("commands with the session GC goal = %v, want %v", got, want)
	}
}
