package motoserver

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// URL returns the endpoint of a moto server for t.
//
// When $SSMKIT_MOTO_URL is set (scripts/moto.sh start prints it), URL checks that the server
// answers and returns it; the server is shared, so call Reset if the test needs a clean slate.
// Otherwise URL starts a private server on a free loopback port and registers a t.Cleanup that
// stops it. When Python or moto is missing, the test is skipped with a message naming what is
// missing; any other start failure fails the test.
func URL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Ping(ctx, url); err != nil {
			t.Fatalf("moto server from $%s=%s is not reachable: %v (start one with scripts/moto.sh start, or unset %s)", EnvURL, url, err, EnvURL)
		}
		return url
	}
	srv, err := Start(context.Background(), Options{})
	switch {
	case errors.Is(err, ErrPythonNotFound), errors.Is(err, ErrMotoNotInstalled):
		t.Skipf("skipping: no moto server available: %v", err)
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
