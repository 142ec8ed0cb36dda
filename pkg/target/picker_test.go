package target

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

// pickerTTY runs Pick on a pseudo-terminal and returns the terminal's
// master side, to type on, and the result.
func pickerTTY(t *testing.T, nodes []Node) (ptmx *os.File, screen *testutil.SyncBuffer, result <-chan pickResult) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pty: %v", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	_ = pty.Setsize(ptmx, &pty.Winsize{Cols: 120, Rows: 40})
	screen = &testutil.SyncBuffer{}
	go func() { _, _ = io.Copy(screen, ptmx) }()
	res := make(chan pickResult, 1)
	go func() {
		n, err := Pick(tty, tty, nodes)
		res <- pickResult{n, err}
	}()
	return ptmx, screen, res
}

type pickResult struct {
	node Node
	err  error
}

func pickerNodes() []Node {
	return []Node{
		{ID: "i-00000000000000001", Name: "api-1", PlatformName: "Amazon Linux", PlatformVersion: "2023", AgentVersion: "3.3.1142.0", PingStatus: "Online"},
		{ID: "i-00000000000000002", Name: "web-1", PlatformName: "Ubuntu", PlatformVersion: "24.04", AgentVersion: "3.2.582.0", PingStatus: "Online"},
		{ID: "i-00000000000000003", Name: "web-2", PlatformType: "Linux", AgentVersion: "3.0.161.0", PingStatus: "ConnectionLost"},
		{ID: "mi-00000000000000004", ComputerName: "kiosk-7.corp", PlatformType: "Windows", AgentVersion: "3.3.40.0", PingStatus: "Online"},
	}
}

func wait(t *testing.T, res <-chan pickResult) pickResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Pick did not return")
		return pickResult{}
	}
}

func TestPickFilterAndEnter(t *testing.T) {
	ptmx, screen, res := pickerTTY(t, pickerNodes())
	// Every column of every node is shown.
	for _, want := range []string{"NAME", "PING", "api-1", "i-00000000000000001", "Amazon Linux 2023", "3.3.1142.0", "ConnectionLost", "kiosk-7.corp", "4/4 nodes"} {
		screen.WaitFor(t, want, 10*time.Second)
	}
	ptmx.WriteString("web2")
	// web-2 ranks first; web-1 matches too, through its ID's last digit.
	screen.WaitFor(t, "2/4 nodes · ↑/↓ move · Enter choose · Esc cancel\x1b[4A\rTarget> web2", 10*time.Second)
	ptmx.WriteString("\r")
	r := wait(t, res)
	if r.err != nil || r.node.ID != "i-00000000000000003" {
		t.Fatalf("Pick = %+v, %v", r.node, r.err)
	}
}

func TestPickArrowsAndBackspace(t *testing.T) {
	ptmx, screen, res := pickerTTY(t, pickerNodes())
	screen.WaitFor(t, "4/4 nodes", 10*time.Second)
	ptmx.WriteString("kx") // no match
	screen.WaitFor(t, "0/4 nodes", 10*time.Second)
	ptmx.WriteString("\x7f\x7f") // erase both
	screen.WaitFor(t, "Target> k\r\x1b[J\r\n  NAME          ID                    PLATFORM           AGENT       PING\r\n> api-1", 10*time.Second)
	ptmx.WriteString("\x1b[B\x1b[B\x1b[A\x1b[B\x1b[B") // down twice, up, down twice: the fourth row
	ptmx.WriteString("\r")
	r := wait(t, res)
	if r.err != nil || r.node.ID != "mi-00000000000000004" {
		t.Fatalf("Pick = %+v, %v", r.node, r.err)
	}
}

func TestPickCancel(t *testing.T) {
	for _, key := range []string{"\x03", "\x1b"} {
		ptmx, screen, res := pickerTTY(t, pickerNodes())
		screen.WaitFor(t, "4/4 nodes", 10*time.Second)
		ptmx.WriteString(key)
		if r := wait(t, res); !errors.Is(r.err, ErrPickCancelled) {
			t.Errorf("%q: err = %v", key, r.err)
		}
	}
}

func TestPickNoNodes(t *testing.T) {
	if _, err := Pick(os.Stdin, io.Discard, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v", err)
	}
}
