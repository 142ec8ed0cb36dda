package procfs

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and parentheses; utime 300, stime 25.
	line := []byte("4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 100 0 0 0 300 25 0 0 20 0 1 0 5 1000 10\n")
	st, err := ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Comm: "my (odd) cmd", State: "S", PPID: 17, PGID: 4242, SID: 4242, CPU: 3250 * time.Millisecond}
	if st != want {
		t.Errorf("ParseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "garbage", "1 (x) S 2", "1 (x) S notanumber 0 0 0 0 0 0 0 0 0 1 1", ") (x"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) did not fail", bad)
		}
	}
}
