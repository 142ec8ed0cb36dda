package motoserver

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/internal/moto"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

func TestURLPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a moto server; skipped under -short")
	}
	t.Setenv(EnvURL, "")
	t.Setenv(EnvForkServer, "")
	var url string
	t.Run("inner", func(t *testing.T) {
		url = URL(t)
		if err := moto.Ping(context.Background(), url); err != nil {
			t.Fatalf("URL() server does not answer: %v", err)
		}
	})
	// The inner test's cleanup has run: its private server must be gone.
	if err := moto.Ping(context.Background(), url); err == nil {
		t.Errorf("private server at %s still answers after its test ended", url)
	}
}

func TestURLFromEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a moto server; skipped under -short")
	}
	url := Private(t)
	t.Setenv(EnvURL, url)
	if got := URL(t); got != url {
		t.Errorf("URL() = %q, want $%s = %q", got, EnvURL, url)
	}
}

func TestURLFromEnvUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	t.Setenv(EnvURL, url)
	r := &testutil.Recorder{TB: t}
	r.Run(func() { URL(r) })
	if failed, _, msg := r.Result(); !failed || !strings.Contains(msg, EnvURL) || !strings.Contains(msg, url) {
		t.Errorf("URL with an unreachable $%s: failed=%v msg=%q", EnvURL, failed, msg)
	}
}

// TestPrivateWithoutMoto: with no python on PATH a test that needs moto
// skips, naming how to install it — and fails when CI requires the tools.
func TestPrivateWithoutMoto(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(moto.EnvPython, "")
	t.Setenv(EnvForkServer, "")
	for _, ci := range []string{"", "1"} {
		t.Setenv(testutil.EnvCI, ci)
		r := &testutil.Recorder{TB: t}
		r.Run(func() { Private(r) })
		failed, skipped, msg := r.Result()
		if failed != (ci == "1") || skipped == (ci == "1") || !strings.Contains(msg, "pip install") {
			t.Errorf("SSMKIT_CI=%q: failed=%v skipped=%v msg=%q", ci, failed, skipped, msg)
		}
	}
}
