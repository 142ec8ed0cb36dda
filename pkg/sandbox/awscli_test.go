package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/internal/testutil"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
)

// TestAWSCLI drives the sandbox with the AWS CLI, a client nobody here
// wrote: describe-instance-information, and start-session up to the point
// where the CLI hands the StartSession response to session-manager-plugin
// (a recording stand-in here), as REAL-AGENT.md describes.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		testutil.MissingTool(t, "the AWS CLI (aws) is not installed; %s", testutil.InstallAWSCLI)
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{{Name: "cli-1"}}})
	target := sb.Instances()[0].ID

	dir := t.TempDir()
	record := filepath.Join(dir, "plugin-call.json")
	plugin := `#!/bin/sh
if [ "$1" = "--version" ]; then echo 1.2.677.0; exit 0; fi
printf '{"response":%s,"argv1":"%s","region":"%s","op":"%s","request":%s,"endpoint":"%s"}' \
  "$(printenv AWS_SSM_START_SESSION_RESPONSE || echo "$1")" "$1" "$2" "$3" "$5" "$6" > "` + record + `"
`
	if err := os.WriteFile(filepath.Join(dir, "session-manager-plugin"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), sb.Env()...)
	env = append(env, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"--endpoint-url", sb.URL(), "--region", sb.Region(), "--output", "json"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	var info struct {
		InstanceInformationList []struct {
			InstanceId, PingStatus, AgentVersion, PlatformType, IPAddress, ResourceType string
		}
	}
	out := run("ssm", "describe-instance-information")
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("describe-instance-information output: %v\n%s", err, out)
	}
	if len(info.InstanceInformationList) != 1 {
		t.Fatalf("instances: %s", out)
	}
	got := info.InstanceInformationList[0]
	if got.InstanceId != target || got.PingStatus != "Online" || got.AgentVersion == "" || got.PlatformType != "Linux" ||
		got.IPAddress == "" || got.ResourceType != "EC2Instance" {
		t.Fatalf("instance information %+v", got)
	}

	run("ssm", "start-session", "--target", target)
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the CLI never ran the plugin: %v", err)
	}
	var call struct {
		Response struct{ SessionId, TokenValue, StreamUrl string }
		Argv1    string
		Region   string
		Op       string
		Request  struct{ Target string }
		Endpoint string
	}
	if err := json.Unmarshal(b, &call); err != nil {
		t.Fatalf("plugin call record: %v\n%s", err, b)
	}
	if call.Response.SessionId == "" || call.Response.TokenValue == "" ||
		!strings.HasPrefix(call.Response.StreamUrl, "ws://127.0.0.1:") ||
		!strings.Contains(call.Response.StreamUrl, "/v1/data-channel/"+call.Response.SessionId) {
		t.Fatalf("StartSession response as the CLI passed it: %+v", call.Response)
	}
	if call.Op != "StartSession" || call.Region != sb.Region() || call.Request.Target != target || call.Endpoint != sb.URL() {
		t.Fatalf("plugin arguments %+v", call)
	}

	// S3 through the CLI: a multipart upload, a download, and the presigned
	// URL `aws s3 presign` hands out (SigV2 query form with the CLI v1).
	dir2 := t.TempDir()
	blob := make([]byte, 9<<20) // over the CLI's 8 MiB multipart threshold
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir2, "blob"), blob, 0o600); err != nil {
		t.Fatal(err)
	}
	run("s3", "mb", "s3://cli-bucket")
	run("s3", "cp", filepath.Join(dir2, "blob"), "s3://cli-bucket/dir/blob")
	run("s3", "cp", "s3://cli-bucket/dir/blob", filepath.Join(dir2, "back"))
	if back, err := os.ReadFile(filepath.Join(dir2, "back")); err != nil || !bytes.Equal(back, blob) {
		t.Fatalf("aws s3 cp round trip: %v (%d bytes back)", err, len(back))
	}
	url := strings.TrimSpace(string(run("s3", "presign", "s3://cli-bucket/dir/blob", "--expires-in", "60")))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got2, blob) {
		t.Errorf("GET of the presigned URL %s: %d, %d bytes", strings.SplitN(url, "?", 2)[0], resp.StatusCode, len(got2))
	}
	resp, err = http.Get(strings.Replace(url, "/dir/blob", "/dir/other", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the presigned URL used for another key: %d, want 403", resp.StatusCode)
	}
}
