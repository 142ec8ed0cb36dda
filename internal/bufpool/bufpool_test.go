package bufpool

import "testing"

func TestGetPut(t *testing.T) {
	b := Get()
	if len(b) != 0 || cap(b) != Size {
		t.Fatalf("Get: len %d cap %d, want 0 and %d", len(b), cap(b), Size)
	}
	Put(append(b, 1, 2, 3))
	// Buffers of another capacity are not pooled: Get never returns them.
	for range 100 {
		Put(make([]byte, 10))
	}
	for range 100 {
		if b := Get(); cap(b) != Size || len(b) != 0 {
			t.Fatalf("Get after foreign Puts: len %d cap %d", len(b), cap(b))
		}
	}
}
