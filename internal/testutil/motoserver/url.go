// Package motoserver gives tests a moto server: a private one per test, or
// the shared one $SSMKIT_MOTO_URL names. The process management itself is
// internal/moto, which the shipped binary uses without linking testing.
package motoserver

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/moto"
	"github.com/ssmkit/ssmkit/internal/testutil"
)

// EnvURL names the environment variable that points tests at an already
// running moto server (scripts/moto.sh prints it), so that one server
// serves a whole `go test` run.
const EnvURL = "SSMKIT_MOTO_URL"

// URL returns the endpoint of a moto server for t.
//
// When $SSMKIT_MOTO_URL is set (scripts/moto.sh start prints it), URL checks that the server
// answers and returns it; the server is shared, so a test that needs a clean slate takes
// Private(t) instead. Otherwise URL returns Private(t).
func URL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := moto.Ping(ctx, url); err != nil {
			t.Fatalf("moto server from $%s=%s is not reachable: %v (start one with scripts/moto.sh start, or unset %s)", EnvURL, url, err, EnvURL)
		}
		return url
	}
	return Private(t)
}

// Private starts a moto server of t's own on a free loopback port and
// stops it when t ends. When Python or moto is missing the test skips
// naming what is missing (fails with $SSMKIT_CI=1); any other start
// failure fails the test.
func Private(t testing.TB) string {
	t.Helper()
	if socket := os.Getenv(EnvForkServer); socket != "" {
		// The fork server warms up once per run (tens of seconds of CPU on a loaded machine)
		// while early tests wait in its backlog.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		f, err := fork(ctx, socket)
		if err != nil {
			t.Fatalf("%v (unset %s to start moto per test)", err, EnvForkServer)
		}
		t.Cleanup(func() {
			if err := f.Close(); err != nil {
				t.Errorf("stopping moto server: %v", err)
			}
		})
		return f.url
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := moto.Start(ctx, moto.Options{})
	switch {
	case errors.Is(err, moto.ErrPythonNotFound), errors.Is(err, moto.ErrMotoNotInstalled):
		testutil.MissingTool(t, "no moto server available: %v; %s", err, testutil.InstallMoto)
	case err != nil:
		t.Fatalf("starting moto server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("stopping moto server: %v", err)
		}
	})
	return srv.URL()
}
