package prefs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeepsUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"json", `{"schemaVersion":"1.0","sessionType":"Standard_Stream","custom":{"a":[1,2]},
			"inputs":{"s3BucketName":"b","idleSessionTimeout":"20","futureInput":7,"shellProfile":{"linux":"bash","mac":"zsh"}}}`},
		{"yaml", "schemaVersion: \"1.0\"\nsessionType: Standard_Stream\ncustom:\n  a: [1, 2]\ninputs:\n  s3BucketName: b\n  idleSessionTimeout: \"20\"\n  futureInput: 7\n  shellProfile:\n    linux: bash\n    mac: zsh\n"},
	}
	var first []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			d.Set(KeyS3Prefix, "p")
			d.Set(KeyShellProfileLinux, "exec bash")
			out, err := d.JSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`"futureInput": 7`, `"mac": "zsh"`, `"custom"`, `"s3KeyPrefix": "p"`, `"linux": "exec bash"`} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %s:\n%s", want, out)
				}
			}
			if first == nil {
				first = out
			} else if string(first) != string(out) {
				t.Errorf("json and yaml render differently:\n%s\n%s", first, out)
			}
			again, err := Parse(out)
			if err != nil || !again.Equal(d) {
				t.Errorf("round trip differs: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "[1,2]", "{", `{"inputs":"x"}`, "a: [", `{"a":1} {"b":2}`, strings.Repeat(" ", 70000) + "{}"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrParse) {
			t.Errorf("Parse(%.20q) = %v, want ErrParse", in, err)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	d := Default()
	if err := Validate(d); err != nil {
		t.Fatal(err)
	}
	if d.String(KeyIdleSessionTimeout) != "20" || !d.Bool(KeyS3Encryption) || d.Bool(KeyRunAsEnabled) {
		t.Errorf("defaults: %v", d.Map())
	}
}

func TestDiff(t *testing.T) {
	a, _ := Parse([]byte(`{"schemaVersion":"1.0","inputs":{"idleSessionTimeout":"20","gone":1,"n":20,"shellProfile":{"linux":""}}}`))
	b, _ := Parse([]byte(`{"schemaVersion":"1.0","inputs":{"idleSessionTimeout":"30","new":true,"n":2e1,"shellProfile":{"linux":"bash"}}}`))
	got := Diff(a, b)
	want := []Change{
		{Path: "inputs.gone", Op: "-", Old: "1"},
		{Path: "inputs.idleSessionTimeout", Op: "~", Old: `"20"`, New: `"30"`},
		{Path: "inputs.new", Op: "+", New: "true"},
		{Path: "inputs.shellProfile.linux", Op: "~", Old: `""`, New: `"bash"`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(Diff(a, a.Clone())) != 0 || !a.Equal(a.Clone()) {
		t.Error("a document differs from its clone")
	}
	c := a.Clone()
	c.Set(KeyS3Bucket, "x")
	if a.Equal(c) || a.String(KeyS3Bucket) != "" {
		t.Error("Clone shares state")
	}
}

func TestResetInputsKeepsOtherKeys(t *testing.T) {
	d, _ := Parse([]byte(`{"schemaVersion":"1.0","parameters":{"p":{"type":"String"}},"inputs":{"idleSessionTimeout":"5","s3BucketName":"b","extra":"x"}}`))
	d.ResetInputs()
	if d.String(KeyIdleSessionTimeout) != "20" || d.String(KeyS3Bucket) != "" || d.String("extra") != "x" {
		t.Errorf("reset: %v", d.Map())
	}
	if _, ok := d.Map()["parameters"]; !ok {
		t.Error("parameters dropped")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value any
		want  string // "" means valid
	}{
		{"idle ok", KeyIdleSessionTimeout, "60", ""},
		{"idle empty is default", KeyIdleSessionTimeout, "", ""},
		{"idle number", KeyIdleSessionTimeout, 15, ""},
		{"idle zero", KeyIdleSessionTimeout, "0", "from 1 to 60"},
		{"idle high", KeyIdleSessionTimeout, "61", "from 1 to 60"},
		{"idle text", KeyIdleSessionTimeout, "ten", "from 1 to 60"},
		{"idle fraction", KeyIdleSessionTimeout, 1.5, "from 1 to 60"},
		{"max ok", KeyMaxSessionDuration, "1440", ""},
		{"max high", KeyMaxSessionDuration, "1441", "from 1 to 1440"},
		{"max negative", KeyMaxSessionDuration, "-5", "from 1 to 1440"},
		{"bool ok", KeyS3Encryption, true, ""},
		{"bool string", KeyLogStreaming, "False", ""},
		{"bool bad", KeyRunAsEnabled, "yes", "must be true or false"},
		{"bool number", KeyLogEncryption, 1, "must be true or false"},
		{"root", KeyRunAsDefaultUser, "root", "must not be root"},
		{"user ok", KeyRunAsDefaultUser, "ssm-user", ""},
		{"user spaces", KeyRunAsDefaultUser, "a b", "OS user name"},
		{"kms id", KeyKMSKey, "1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"kms alias", KeyKMSKey, "alias/session", ""},
		{"kms arn", KeyKMSKey, "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", ""},
		{"kms alias arn", KeyKMSKey, "arn:aws:kms:us-east-1:111122223333:alias/x", ""},
		{"kms bad", KeyKMSKey, "my-key", "KMS key id"},
		{"bucket bad", KeyS3Bucket, "My_Bucket", "S3 bucket name"},
		{"log group bad", KeyLogGroup, "a b", "log group name"},
		{"prefix slash", KeyS3Prefix, "/logs", "leading slash"},
		{"string typed", KeyS3Bucket, 5, "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Default()
			d.Set(tt.key, tt.value)
			err := Validate(d)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), tt.key) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want %q for %s", err, tt.want, tt.key)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("message is not one line")
			}
		})
	}
}

// TestValidateDocumentSize: a document that would be over SSM's 64 KiB
// limit as written is refused by Validate, before anything is written (it
// was written, and then every later Parse refused it).
func TestValidateDocumentSize(t *testing.T) {
	d := Default()
	d.Set(KeyShellProfileLinux, strings.Repeat("x", 70000))
	err := Validate(d)
	if err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate of a 70,000-byte shell profile = %v", err)
	}
	for _, want := range []string{"65536", "64 KiB", "shellProfile.linux"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Just under the limit as written is fine, and Parse reads it back.
	base, _ := Default().JSON()
	d.Set(KeyShellProfileLinux, strings.Repeat("x", MaxDocumentBytes-len(base)))
	if err := Validate(d); err != nil {
		t.Fatalf("a document of exactly the limit: %v", err)
	}
	b, _ := d.JSON()
	if len(b) != MaxDocumentBytes {
		t.Fatalf("document is %d bytes, want %d", len(b), MaxDocumentBytes)
	}
	if _, err := Parse(b); err != nil {
		t.Errorf("Parse of a document at the limit: %v", err)
	}
	d.Set(KeyShellProfileLinux, strings.Repeat("x", MaxDocumentBytes-len(base)+1))
	if err := Validate(d); err == nil {
		t.Error("a document one byte over the limit is valid")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"inputs":{"idleSessionTimeout":"20"}}`))
	f.Add([]byte("inputs:\n  a: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		_ = Validate(d)
		out, err := d.JSON()
		if err != nil {
			return
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !again.Equal(d) {
			t.Fatalf("round trip changed %q", out)
		}
	})
}

func TestValidKMSKeyID(t *testing.T) {
	for s, want := range map[string]bool{
		"1234abcd-12ab-34cd-56ef-1234567890ab": true,
		"mrk-1234abcd12ab34cd56ef1234567890ab": true,
		"alias/ssm-sessions":                   true,
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab":     true,
		"arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab": true,
		"arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/ssm":                         true,
		"arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab":     true,
		"arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab":      false,
		"arn:aws:kms::111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab":              false,
		"arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab":             false,
		"arn:aws:kms:us-east-1:111122223333:key/not-a-key":                                false,
		"arn:aws:kms:us-east-1:111122223333:keys/1234abcd-12ab-34cd-56ef-1234567890ab":    false,
		"arn:aws:kms:us-east-1:111122223333":                                              false,
		"alias/":                                                                          false,
		"":                                                                                false,
		"my key":                                                                          false,
	} {
		if got := ValidKMSKeyID(s); got != want {
			t.Errorf("ValidKMSKeyID(%q) = %v, want %v", s, got, want)
		}
	}
}
