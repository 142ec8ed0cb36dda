package forward_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/cmd/root"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// TestBadBindAddressHint: a bad bind address is about the local machine,
// so its message says what to change there and no AWS hint
// (--region/--endpoint-url) follows. Nothing reaches AWS: the AWS settings
// point at a closed port.
func TestBadBindAddressHint(t *testing.T) {
	for _, tt := range []struct {
		spec     string
		wantCode int
		want     string
	}{
		{spec: "nosuchhost:8080:80", wantCode: 2, want: `bind address "nosuchhost" is not an IP address or localhost`},
		{spec: "203.0.113.9:0:80", wantCode: 1, want: "the bind address is not an address of this machine"},
	} {
		ios, _, _, stderr := iostreams.Test()
		env := map[string]string{}
		f := root.NewFactory(ios, func(k string) string { return env[k] })
		t.Setenv("AWS_REGION", "us-east-1")
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		code := root.Execute(context.Background(), f, root.NewCmdRoot(f),
			[]string{"--endpoint-url", "http://127.0.0.1:1", "forward", "i-0123456789abcdef0", tt.spec})
		out := stderr.String()
		if code != tt.wantCode || !strings.Contains(out, tt.want) || strings.Contains(out, "--region") ||
			strings.Contains(out, "--endpoint-url") || strings.Count(strings.TrimSpace(out), "\n") > 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q without an AWS hint", tt.spec, code, out, tt.wantCode, tt.want)
		}
	}
}
