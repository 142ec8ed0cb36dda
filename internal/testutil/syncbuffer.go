package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers and polling
// readers: a session's or a process's output, copied on other goroutines
// while the test waits for it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Len is the number of bytes written so far.
func (s *SyncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// WaitFor polls until the buffer holds want, failing tb with everything
// written so far if it does not within the given time.
func (s *SyncBuffer) WaitFor(tb testing.TB, want string, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			tb.Fatalf("no %q within %s; output:\n%s", want, within, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
