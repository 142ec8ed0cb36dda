package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestStartWritesProfiles(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{EnvCPU: filepath.Join(dir, "cpu.pprof"), EnvMem: filepath.Join(dir, "mem.pprof")}
	var errOut bytes.Buffer
	stop := Start(func(k string) string { return env[k] }, &errOut)
	x := 0
	for i := range 1_000_000 {
		x += i
	}
	_ = x
	stop()
	for _, p := range env {
		st, err := os.Stat(p)
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (size %d)", p, err, st.Size())
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("warnings: %s", errOut.String())
	}
}

func TestStartWithoutEnvDoesNothing(t *testing.T) {
	keepMemProfileRate(t)
	var errOut bytes.Buffer
	stop := Start(func(string) string { return "" }, &errOut)
	stop()
	if errOut.Len() != 0 {
		t.Errorf("warnings: %s", errOut.String())
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("MemProfileRate = %d without %s, want 0 (no allocation sampling)", runtime.MemProfileRate, EnvMem)
	}
}

// The heap profile asked for samples allocations at the runtime's rate.
func TestStartKeepsSamplingForTheHeapProfile(t *testing.T) {
	keepMemProfileRate(t)
	path := filepath.Join(t.TempDir(), "mem.pprof")
	stop := Start(func(k string) string {
		if k == EnvMem {
			return path
		}
		return ""
	}, &bytes.Buffer{})
	if runtime.MemProfileRate != 512<<10 {
		t.Errorf("MemProfileRate = %d with %s set, want the runtime's default", runtime.MemProfileRate, EnvMem)
	}
	stop()
}

// keepMemProfileRate sets the runtime's default sampling rate for t and
// restores the previous one afterwards.
func keepMemProfileRate(t *testing.T) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 512 << 10
	t.Cleanup(func() { runtime.MemProfileRate = old })
}

// A path that cannot be created is a warning, never a failure.
func TestStartBadPathWarns(t *testing.T) {
	var errOut bytes.Buffer
	bad := filepath.Join(t.TempDir(), "missing", "cpu.pprof")
	stop := Start(func(k string) string {
		if k == EnvCPU {
			return bad
		}
		return ""
	}, &errOut)
	stop()
	if !bytes.Contains(errOut.Bytes(), []byte(EnvCPU)) {
		t.Errorf("no warning naming %s: %q", EnvCPU, errOut.String())
	}
	// The profiler is free again.
	if err := pprof.StartCPUProfile(&bytes.Buffer{}); err != nil {
		t.Fatalf("CPU profiler left running: %v", err)
	}
	pprof.StopCPUProfile()
}
