package doctor

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"

	"github.com/ssmkit/ssmkit/pkg/prefs"
)

// ParsePrefs reads a Session document's content into Prefs with the
// preferences model of package prefs, which also validates it (ranges,
// names). name is the document name. A parse error is stored in Err.
func ParsePrefs(name, content string) *Prefs {
	p := &Prefs{Document: name, Found: true}
	doc, err := prefs.Parse([]byte(content))
	if err != nil {
		p.Err = fmt.Errorf("document %s: %w", name, err)
		return p
	}
	if st, _ := doc.Map()["sessionType"].(string); st != "" && st != ssmdoc.SessionTypeStandardStream {
		p.Err = fmt.Errorf("document %s has sessionType %q, want %s", name, st, ssmdoc.SessionTypeStandardStream)
		return p
	}
	p.Doc = doc
	p.S3Bucket, p.S3Prefix, p.S3Encryption = doc.String(prefs.KeyS3Bucket), doc.String(prefs.KeyS3Prefix), doc.Bool(prefs.KeyS3Encryption)
	p.LogGroup, p.CWEncryption, p.CWStreaming = doc.String(prefs.KeyLogGroup), doc.Bool(prefs.KeyLogEncryption), doc.Bool(prefs.KeyLogStreaming)
	p.KMSKeyID = doc.String(prefs.KeyKMSKey)
	p.RunAsEnabled, p.RunAsDefaultUser = doc.Bool(prefs.KeyRunAsEnabled), doc.String(prefs.KeyRunAsDefaultUser)
	p.IdleTimeout, p.MaxDuration = doc.String(prefs.KeyIdleSessionTimeout), doc.String(prefs.KeyMaxSessionDuration)
	p.ShellProfileLinux, p.ShellProfileWindows = doc.String(prefs.KeyShellProfileLinux), doc.String(prefs.KeyShellProfileWindows)
	var verrs prefs.ValidationErrors
	if err := prefs.Validate(doc); errors.As(err, &verrs) {
		p.Invalid = map[string]string{}
		for _, e := range verrs {
			p.Invalid[e.Key] = e.Msg
		}
	}
	known := map[string]bool{}
	for _, f := range prefs.Fields() {
		known[strings.SplitN(f.Key, ".", 2)[0]] = true
	}
	if in, ok := doc.Map()["inputs"].(map[string]any); ok {
		for k := range in {
			if !known[k] {
				p.UnknownSessionInputs = append(p.UnknownSessionInputs, k)
			}
		}
	}
	sort.Strings(p.UnknownSessionInputs)
	return p
}
