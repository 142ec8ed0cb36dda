package prefs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/cmdutil"
	"github.com/ssmkit/ssmkit/pkg/cmdutil/cmdtest"
	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/sandbox"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sandboxtest"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

type harness struct {
	t   *testing.T
	cfg aws.Config
	ssm *ssm.Client
}

type result struct {
	stdout, stderr string
	err            error
	code           int
}

// run executes `prefs <args>` against the sandbox.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	ios, _, stdout, stderr := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, AWSConfig: func(context.Context) (aws.Config, error) { return h.cfg, nil }}
	cmd := NewCmdPrefs(f)
	cmdtest.Prepare(cmd, args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := cmd.ExecuteContextC(ctx)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, code: exitCode(err)}
}

func (h *harness) mustRun(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.err != nil {
		h.t.Fatalf("prefs %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

// versions returns the document's latest and default versions through the
// SSM API ("" when it does not exist).
func (h *harness) versions(name string) (latest, def string) {
	h.t.Helper()
	out, err := h.ssm.DescribeDocument(context.Background(), &ssm.DescribeDocumentInput{Name: aws.String(name)})
	if err != nil {
		var invalid *ssmtypes.InvalidDocument
		if errors.As(err, &invalid) {
			return "", ""
		}
		h.t.Fatal(err)
	}
	return aws.ToString(out.Document.LatestVersion), aws.ToString(out.Document.DefaultVersion)
}

// content returns one version's inputs through GetDocument.
func (h *harness) content(name, version string) map[string]any {
	h.t.Helper()
	in := &ssm.GetDocumentInput{Name: aws.String(name)}
	if version != "" {
		in.DocumentVersion = aws.String(version)
	}
	out, err := h.ssm.GetDocument(context.Background(), in)
	if err != nil {
		h.t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Content)), &doc); err != nil {
		h.t.Fatal(err)
	}
	return doc
}

func inputs(doc map[string]any) map[string]any {
	m, _ := doc["inputs"].(map[string]any)
	return m
}

func (h *harness) wantVersions(name, latest, def string) {
	h.t.Helper()
	if l, d := h.versions(name); l != latest || d != def {
		h.t.Fatalf("%s: latest %q default %q, want %q and %q", name, l, d, latest, def)
	}
}

func TestPrefsAgainstSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the sandbox")
	}
	sb := sandboxtest.Start(t, sandbox.Options{Instances: []sandbox.InstanceSpec{}})
	cfg := sb.AWSConfig()
	h := &harness{t: t, cfg: cfg, ssm: awsapi.NewSSM(cfg)}
	ctx := context.Background()
	doc := ssmdoc.Shell
	dir := t.TempDir()

	// show before anything exists: the defaults, and no document created.
	r := h.mustRun("show")
	if !strings.Contains(r.stderr, "does not exist yet") || !strings.Contains(r.stdout, "idleSessionTimeout\t20") {
		t.Fatalf("show of a missing document:\n%s\n%s", r.stderr, r.stdout)
	}
	h.wantVersions(doc, "", "")

	// set: creates the document; --create-targets makes the log group.
	r = h.mustRun("set", "--idle-timeout", "30", "--cw-log-group", "/ssm/sessions", "--cw-streaming", "--create-targets", "--retention-days", "30")
	if !strings.Contains(r.stderr, "Created "+doc+" (version 1)") || !strings.Contains(r.stderr, "Created log group /ssm/sessions") {
		t.Fatalf("set: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "inputs.idleSessionTimeout") {
		t.Errorf("set printed no changes: %q", r.stdout)
	}
	h.wantVersions(doc, "1", "1")
	if in := inputs(h.content(doc, "1")); in["idleSessionTimeout"] != "30" || in["cloudWatchLogGroupName"] != "/ssm/sessions" || in["cloudWatchStreamingEnabled"] != true {
		t.Fatalf("version 1 inputs: %v", in)
	}
	groups, err := cloudwatchlogs.NewFromConfig(cfg).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/ssm/sessions")})
	if err != nil || len(groups.LogGroups) != 1 || aws.ToInt32(groups.LogGroups[0].RetentionInDays) != 30 {
		t.Fatalf("log group: %+v %v", groups, err)
	}

	// show, table and JSON.
	r = h.mustRun("show")
	if !strings.Contains(r.stdout, "idleSessionTimeout\t30") || !strings.Contains(r.stderr, "version 1 (default) of 1") {
		t.Errorf("show:\n%s%s", r.stderr, r.stdout)
	}
	r = h.mustRun("show", "--json")
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || inputs(shown)["idleSessionTimeout"] != "30" {
		t.Fatalf("show --json: %v %s", err, r.stdout)
	}

	// The same values again: not an error, no new version.
	r = h.mustRun("set", "--idle-timeout", "30")
	if !strings.Contains(r.stderr, "No changes") || r.stdout != "" {
		t.Errorf("identical set: %q %q", r.stderr, r.stdout)
	}
	h.wantVersions(doc, "1", "1")

	// diff and --dry-run write nothing.
	file := filepath.Join(dir, "prefs.yaml")
	yamlDoc := "schemaVersion: \"1.0\"\ndescription: as code\nsessionType: Standard_Stream\ninputs:\n" +
		"  idleSessionTimeout: \"45\"\n  maxSessionDuration: \"120\"\n  cloudWatchLogGroupName: /ssm/sessions\n" +
		"  cloudWatchStreamingEnabled: true\n  s3EncryptionEnabled: false\n  futureInput: kept\n  shellProfile:\n    linux: exec bash\n"
	if err := os.WriteFile(file, []byte(yamlDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.mustRun("diff", "-f", file)
	for _, want := range []string{"~\tinputs.idleSessionTimeout\t\"30\"\t\"45\"", "+\tinputs.futureInput\t\t\"kept\"", "~\tdescription"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	r = h.mustRun("diff", "-f", file, "--json")
	var d writeResult
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || !d.DryRun || len(d.Changes) == 0 || d.Result != nil {
		t.Fatalf("diff --json: %v %s", err, r.stdout)
	}
	h.mustRun("set", "--idle-timeout", "10", "--dry-run")
	h.wantVersions(doc, "1", "1")

	// apply the file: version 2, unknown key kept.
	r = h.mustRun("apply", "-f", file)
	if !strings.Contains(r.stderr, "version 2 is now the default") {
		t.Fatalf("apply: %s", r.stderr)
	}
	h.wantVersions(doc, "2", "2")
	v2 := h.content(doc, "2")
	if in := inputs(v2); in["idleSessionTimeout"] != "45" || in["futureInput"] != "kept" || v2["description"] != "as code" {
		t.Fatalf("version 2: %v", v2)
	}

	// set keeps keys it does not know.
	h.mustRun("set", "--max-duration", "0")
	h.wantVersions(doc, "3", "3")
	if in := inputs(h.content(doc, "3")); in["futureInput"] != "kept" || in["maxSessionDuration"] != "" || in["idleSessionTimeout"] != "45" {
		t.Fatalf("version 3 lost keys: %v", in)
	}

	// reset: the defaults, other keys kept; then nothing more to reset.
	r = h.mustRun("reset")
	h.wantVersions(doc, "4", "4")
	if in := inputs(h.content(doc, "4")); in["idleSessionTimeout"] != "20" || in["cloudWatchLogGroupName"] != "" || in["futureInput"] != "kept" {
		t.Fatalf("version 4 after reset: %v", in)
	}
	r = h.mustRun("reset")
	if !strings.Contains(r.stderr, "No changes") {
		t.Errorf("second reset: %s", r.stderr)
	}
	h.wantVersions(doc, "4", "4")
	// The history is intact: every version still readable.
	for v, idle := range map[string]string{"1": "30", "2": "45", "3": "45", "4": "20"} {
		if got := inputs(h.content(doc, v))["idleSessionTimeout"]; got != idle {
			t.Errorf("version %s idleSessionTimeout %v, want %s", v, got, idle)
		}
	}

	// Content equal to an older version: SSM says DuplicateDocumentContent
	// and that version becomes the default again.
	h.mustRun("apply", "-f", file)
	h.wantVersions(doc, "4", "2")
	if r := h.mustRun("show"); !strings.Contains(r.stdout, "idleSessionTimeout\t45") {
		t.Errorf("show after reusing version 2: %s", r.stdout)
	}

	t.Run("other document", func(t *testing.T) {
		h.mustRun("set", "--document", "Team-Shell", "--idle-timeout", "5", "--run-as", "--run-as-default-user", "ops")
		h.wantVersions("Team-Shell", "1", "1")
		if in := inputs(h.content("Team-Shell", "")); in["runAsDefaultUser"] != "ops" || in["runAsEnabled"] != true {
			t.Fatalf("Team-Shell: %v", in)
		}
		h.wantVersions(doc, "4", "2")
	})

	t.Run("create targets with kms", func(t *testing.T) {
		key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		keyID := aws.ToString(key.KeyMetadata.KeyId)
		if _, err := kms.NewFromConfig(cfg).CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/ssm-sessions"), TargetKeyId: aws.String(keyID)}); err != nil {
			t.Fatal(err)
		}
		h.mustRun("set", "--document", "Kms-Shell", "--s3-bucket", "kms-transcripts", "--s3-encryption", "--kms-key", "alias/ssm-sessions", "--create-targets")
		s3c := awsapi.NewS3(cfg)
		enc, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("kms-transcripts")})
		if err != nil {
			t.Fatal(err)
		}
		rule := enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault
		if rule.SSEAlgorithm != "aws:kms" || !strings.HasSuffix(aws.ToString(rule.KMSMasterKeyID), keyID) {
			t.Errorf("bucket encryption %+v", rule)
		}
		pab, err := s3c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String("kms-transcripts")})
		if err != nil || !aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) || !aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets) {
			t.Errorf("public access block %+v %v", pab, err)
		}
		// Without KMS: AES256.
		h.mustRun("set", "--document", "Aes-Shell", "--s3-bucket", "aes-transcripts", "--create-targets")
		enc, err = s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("aes-transcripts")})
		if err != nil || enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
			t.Errorf("aes bucket: %+v %v", enc, err)
		}
	})

	t.Run("validation errors write nothing", func(t *testing.T) {
		bad := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		tests := []struct {
			name string
			args []string
			code int
			want string
		}{
			{"idle low", []string{"set", "--idle-timeout", "0"}, 2, "--idle-timeout must be a whole number of minutes from 1 to 60, got \"0\""},
			{"idle high", []string{"set", "--idle-timeout", "61"}, 2, "from 1 to 60"},
			{"max high", []string{"set", "--max-duration", "1441"}, 2, "--max-duration must be a whole number of minutes from 1 to 1440"},
			{"bool flag", []string{"set", "--cw-streaming=yes"}, 2, "invalid argument \"yes\""},
			{"root", []string{"set", "--run-as", "--run-as-default-user", "root"}, 2, "must not be root"},
			{"kms format", []string{"set", "--kms-key", "nope"}, 2, "must be a KMS key id, key ARN, alias/<name> or alias ARN"},
			{"kms missing", []string{"set", "--kms-key", "alias/missing"}, 1, "kmsKeyId \"alias/missing\" does not exist"},
			{"kms missing id", []string{"set", "--kms-key", "1234abcd-12ab-34cd-56ef-1234567890ab"}, 1, "does not exist in this account and region"},
			{"bucket missing", []string{"set", "--s3-bucket", "no-such-bucket"}, 1, "s3BucketName \"no-such-bucket\" does not exist: create it, or pass --create-targets"},
			{"log group missing", []string{"set", "--cw-log-group", "/no/such"}, 1, "cloudWatchLogGroupName \"/no/such\" does not exist"},
			{"run-as without user", []string{"set", "--document", "Fresh", "--run-as"}, 2, "--run-as needs --run-as-default-user"},
			{"file idle", []string{"apply", "-f", bad("idle.json", `{"inputs":{"idleSessionTimeout":"90"}}`)}, 1, "idleSessionTimeout must be a whole number of minutes from 1 to 60, got \"90\""},
			{"file max", []string{"apply", "-f", bad("max.yaml", "inputs:\n  maxSessionDuration: 2000\n")}, 1, "maxSessionDuration must be a whole number of minutes from 1 to 1440"},
			{"file bool", []string{"apply", "-f", bad("bool.json", `{"inputs":{"s3EncryptionEnabled":"yes"}}`)}, 1, "s3EncryptionEnabled must be true or false, got \"yes\""},
			{"file root", []string{"apply", "-f", bad("root.json", `{"inputs":{"runAsEnabled":true,"runAsDefaultUser":"root"}}`)}, 1, "runAsDefaultUser must not be root"},
			{"file syntax", []string{"diff", "-f", bad("syntax.json", `{"inputs":`)}, 1, "not a Session Manager document"},
			{"file missing", []string{"apply", "-f", filepath.Join(dir, "nope.json")}, 1, "no such file"},
			{"file kms", []string{"apply", "-f", bad("kms.json", `{"inputs":{"kmsKeyId":"alias/missing"}}`)}, 1, "does not exist"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				l, d := h.versions(doc)
				fl, _ := h.versions("Fresh")
				r := h.run(tt.args...)
				if r.code != tt.code || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
					t.Fatalf("exit %d, err %v; want exit %d and %q", r.code, r.err, tt.code, tt.want)
				}
				if strings.Contains(r.err.Error(), "\n") {
					t.Errorf("message is not one line: %q", r.err)
				}
				h.wantVersions(doc, l, d)
				if l2, _ := h.versions("Fresh"); l2 != fl {
					t.Errorf("Fresh was written")
				}
			})
		}
	})

	t.Run("optimistic check", func(t *testing.T) {
		store := prefs.Store{SSM: h.ssm, Name: doc}
		snap, err := store.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Another writer makes a new version after our read.
		other := snap.Doc.Clone()
		other.Set(prefs.KeyIdleSessionTimeout, "7")
		content, _ := other.JSON()
		if _, err := h.ssm.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(doc), Content: aws.String(string(content)), DocumentVersion: aws.String("$LATEST")}); err != nil {
			t.Fatal(err)
		}
		latest, def := h.versions(doc)
		mine := snap.Doc.Clone()
		mine.Set(prefs.KeyIdleSessionTimeout, "8")
		_, err = store.Save(ctx, snap, mine)
		if !errors.Is(err, prefs.ErrConflict) || !strings.Contains(err.Error(), "run the command again") {
			t.Fatalf("err = %v, want a conflict", err)
		}
		t.Logf("conflict message: %v", err)
		h.wantVersions(doc, latest, def)
		n, _ := strconv.Atoi(latest)
		if n != 5 {
			t.Errorf("latest %s, want 5", latest)
		}
	})
}
