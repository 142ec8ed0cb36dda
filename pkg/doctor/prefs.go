package doctor

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// knownInputs are the Standard_Stream inputs the doctor understands.
var knownInputs = map[string]bool{
	"s3BucketName": true, "s3KeyPrefix": true, "s3EncryptionEnabled": true,
	"cloudWatchLogGroupName": true, "cloudWatchEncryptionEnabled": true, "cloudWatchStreamingEnabled": true,
	"kmsKeyId": true, "runAsEnabled": true, "runAsDefaultUser": true, "idleSessionTimeout": true,
	"maxSessionDuration": true, "shellProfile": true,
}

// ParsePrefs reads a Session document's content into Prefs. name is the
// document name. A parse error is returned and also stored in Err.
func ParsePrefs(name, content string) *Prefs {
	p := &Prefs{Document: name, Found: true}
	var doc struct {
		SessionType string         `json:"sessionType"`
		Inputs      map[string]any `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(content), &doc); err != nil {
		p.Err = fmt.Errorf("document %s is not valid JSON: %w", name, err)
		return p
	}
	if doc.SessionType != "" && doc.SessionType != "Standard_Stream" {
		p.Err = fmt.Errorf("document %s has sessionType %q, want Standard_Stream", name, doc.SessionType)
		return p
	}
	in := doc.Inputs
	str := func(k string) string {
		switch v := in[k].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
		return ""
	}
	boolean := func(k string) bool {
		b, _ := strconv.ParseBool(str(k))
		return b
	}
	p.S3Bucket, p.S3Prefix, p.S3Encryption = str("s3BucketName"), str("s3KeyPrefix"), boolean("s3EncryptionEnabled")
	p.LogGroup, p.CWEncryption, p.CWStreaming = str("cloudWatchLogGroupName"), boolean("cloudWatchEncryptionEnabled"), boolean("cloudWatchStreamingEnabled")
	p.KMSKeyID = str("kmsKeyId")
	p.RunAsEnabled, p.RunAsDefaultUser = boolean("runAsEnabled"), str("runAsDefaultUser")
	p.IdleTimeout, p.MaxDuration = str("idleSessionTimeout"), str("maxSessionDuration")
	if sp, ok := in["shellProfile"].(map[string]any); ok {
		p.ShellProfileLinux, _ = sp["linux"].(string)
		p.ShellProfileWindows, _ = sp["windows"].(string)
	}
	for k := range in {
		if !knownInputs[k] {
			p.UnknownSessionInputs = append(p.UnknownSessionInputs, k)
		}
	}
	sort.Strings(p.UnknownSessionInputs)
	return p
}

// minutes parses a preference in minutes; "" means the default.
func minutes(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}
