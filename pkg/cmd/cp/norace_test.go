//go:build !race

package cp

// raceEnabled is true when the race detector is on (see TestCopy256MiB).
const raceEnabled = false
