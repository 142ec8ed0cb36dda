package cmdutil

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// minSecretLen keeps short values (an empty variable, "1") from turning
// every message into asterisks. Real AWS secrets are 40 characters or more.
const minSecretLen = 8

// redacted replaces a secret in output.
const redacted = "[REDACTED]"

// secretParamRE matches signed-URL parameters and header values that carry
// credentials, whatever secrets the Redactor was told about.
var secretParamRE = regexp.MustCompile(`(?i)((?:X-Amz-Security-Token|X-Amz-Signature|X-Amz-Credential)=)[^&\s"']+|((?:Authorization|X-Amz-Security-Token):\s*)[^\r\n]+`)

// Redactor removes secrets from text. The zero value is ready to use, and a
// nil *Redactor still removes the signed-URL parameters. It is safe for
// concurrent use.
type Redactor struct {
	mu      sync.Mutex
	secrets map[string]struct{}
}

// Add records secrets to remove. Values shorter than 8 characters are
// ignored.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		if r.secrets == nil {
			r.secrets = make(map[string]struct{})
		}
		r.secrets[s] = struct{}{}
	}
}

// Redact returns s with every known secret, and every credential-bearing
// URL parameter or header, replaced by [REDACTED].
func (r *Redactor) Redact(s string) string {
	if r != nil {
		r.mu.Lock()
		secrets := make([]string, 0, len(r.secrets))
		for v := range r.secrets {
			secrets = append(secrets, v)
		}
		r.mu.Unlock()
		// Longest first, so a secret that contains another is removed whole.
		sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
		for _, v := range secrets {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return secretParamRE.ReplaceAllString(s, "${1}${2}"+redacted)
}
