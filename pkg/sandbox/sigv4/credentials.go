// Package sigv4 is the sandbox's gatekeeper: per-run random credentials,
// real AWS Signature Version 4 verification of every request (header and
// presigned query-string forms), the callers those credentials stand for,
// and errors in the shape and status each AWS protocol family uses.
//
// Signatures are recomputed with aws-sdk-go-v2's own signer
// (aws/signer/v4) over the parts of the request the client signed, and
// compared in constant time. S3 presigned URLs in the older SigV2 form,
// which the AWS CLI v1's `aws s3 presign` still produces, are accepted too
// (presignv2.go). Credentials minted through the sandbox (STS
// AssumeRole, GetSessionToken, IAM CreateAccessKey answered by moto) are
// recorded as those answers pass through (Record), so clients that switch
// to them keep working, each in the account AWS would put it in.
//
// Secrets (secret keys, session tokens, signatures) never reach errors or
// logs.
package sigv4

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"strings"
	"sync"
)

// DefaultAccountID is the account of the sandbox's own credentials: moto's
// default account.
const DefaultAccountID = "123456789012"

// Credential is one access key the sandbox accepts.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials; requests must present
	// it (X-Amz-Security-Token).
	SessionToken string
	// AccountID is the account the key belongs to: its caller sees that
	// account's view of the sandbox.
	AccountID string
	// ARN is the identity, e.g. arn:aws:sts::111122223333:assumed-role/r/s.
	ARN string
}

// Name is the user name or role session name of the identity (the last
// part of its ARN), which AWS puts in session ids.
func (c Credential) Name() string {
	if i := strings.LastIndexByte(c.ARN, '/'); i >= 0 && i+1 < len(c.ARN) {
		return c.ARN[i+1:]
	}
	return c.AccessKeyID
}

// Caller is who a verified request comes from.
type Caller struct {
	AccessKeyID string
	AccountID   string
	ARN         string
	Name        string
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the verified caller of a request's context, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// NewRootCredential returns fresh random long-term credentials for account
// (DefaultAccountID when empty): an AKIA… key id and a 40-character
// secret, as IAM issues them.
func NewRootCredential(account string) Credential {
	if account == "" {
		account = DefaultAccountID
	}
	return Credential{
		AccessKeyID:     "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
		AccountID:       account,
		ARN:             "arn:aws:iam::" + account + ":user/ssmkit-sandbox",
	}
}

// randomString draws n characters from alphabet with crypto/rand.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("sigv4: no randomness: " + err.Error())
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// maxCredentials bounds the store: each minted credential is kept until
// the sandbox stops, and a runaway client must not grow it forever.
const maxCredentials = 100000

// Store holds the credentials the sandbox accepts. It is safe for
// concurrent use; the zero value is not usable, create it with NewStore.
type Store struct {
	mu    sync.RWMutex
	byKey map[string]Credential
	order []string
}

// NewStore returns a store holding creds.
func NewStore(creds ...Credential) *Store {
	s := &Store{byKey: make(map[string]Credential)}
	for _, c := range creds {
		s.Add(c)
	}
	return s
}

// Add accepts c from now on (replacing an earlier credential with its key
// id). The oldest minted credentials are dropped past maxCredentials.
func (s *Store) Add(c Credential) {
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return
	}
	if c.AccountID == "" {
		c.AccountID = DefaultAccountID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byKey[c.AccessKeyID]; !ok {
		s.order = append(s.order, c.AccessKeyID)
	}
	s.byKey[c.AccessKeyID] = c
	for len(s.order) > maxCredentials {
		delete(s.byKey, s.order[1]) // keep the first: the root credential
		s.order = append(s.order[:1], s.order[2:]...)
	}
}

// Lookup returns the credential of an access key id.
func (s *Store) Lookup(accessKeyID string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byKey[accessKeyID]
	return c, ok
}

// Len is the number of credentials held.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
