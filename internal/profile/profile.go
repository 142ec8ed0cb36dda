// Package profile writes CPU and heap profiles of a whole ssmkit process
// when asked to through the environment, so that any command — a client,
// `sandbox up --foreground`, the bench's agents — can be profiled without a
// code change:
//
//	SSMKIT_CPUPROFILE=cpu.pprof    CPU profile from start to exit
//	SSMKIT_MEMPROFILE=mem.pprof    heap profile (all allocations) at exit
//
// Read them with `go tool pprof`.
package profile

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// Environment variables that turn profiling on.
const (
	EnvCPU = "SSMKIT_CPUPROFILE"
	EnvMem = "SSMKIT_MEMPROFILE"
)

// Start starts the profiles getenv asks for and returns the function that
// writes them; call it on the way out. Problems are reported to errOut and
// never stop the program.
func Start(getenv func(string) string, errOut io.Writer) (stop func()) {
	var cpu *os.File
	if path := getenv(EnvCPU); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
			if err != nil {
				_ = f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(errOut, "warning: %s: not profiling: %v\n", EnvCPU, err)
		} else {
			cpu = f
		}
	}
	memPath := getenv(EnvMem)
	if memPath == "" {
		// Nothing will read a heap profile: stop sampling allocations. The
		// runtime samples one every 512 KiB allocated into a 1.4 MB hash
		// table of stacks and keeps a record per stack for the life of the
		// process, resident memory no command needs (issue 12).
		runtime.MemProfileRate = 0
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			_ = cpu.Close()
		}
		if memPath != "" {
			if err := writeHeap(memPath); err != nil {
				fmt.Fprintf(errOut, "warning: %s: %v\n", EnvMem, err)
			}
		}
	}
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // up-to-date statistics
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
