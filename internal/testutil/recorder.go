package testutil

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// Recorder is a testing.TB that records how a helper ends a test instead
// of ending the real one: Fatalf and Skipf stop the helper's goroutine (as
// they would the test's) and are kept for the caller to check.
type Recorder struct {
	testing.TB
	mu      sync.Mutex
	failed  bool
	skipped bool
	msg     string
}

// Helper does nothing: the recorded test is not the real one.
func (r *Recorder) Helper() {}

// Fatalf records a failure and stops the calling goroutine.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.end(&r.failed, format, args)
}

// Skipf records a skip and stops the calling goroutine.
func (r *Recorder) Skipf(format string, args ...any) {
	r.end(&r.skipped, format, args)
}

func (r *Recorder) end(flag *bool, format string, args []any) {
	r.mu.Lock()
	*flag = true
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// Run calls fn on a goroutine of its own, so that Fatalf and Skipf can stop
// it, and waits for it to end.
func (r *Recorder) Run(fn func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	wg.Wait()
}

// Result returns whether the helper failed or skipped, and its message.
func (r *Recorder) Result() (failed, skipped bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed, r.skipped, r.msg
}
