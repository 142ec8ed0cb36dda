package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// DefaultMaxSkew is the clock skew AWS accepts between a signed request's
// X-Amz-Date and the server's clock.
const DefaultMaxSkew = 15 * time.Minute

// DefaultMaxBody bounds every request body the sandbox accepts (and so
// passes on to moto), unless configured otherwise.
const DefaultMaxBody = 32 << 20

// maxPresignExpiry is the longest X-Amz-Expires AWS accepts (7 days).
const maxPresignExpiry = 7 * 24 * time.Hour

const (
	algorithm     = "AWS4-HMAC-SHA256"
	amzDateFormat = "20060102T150405Z"
	unsigned      = "UNSIGNED-PAYLOAD"
)

// Verifier checks SigV4 signatures against a Store.
type Verifier struct {
	Store *Store
	// Now is the server's clock (time.Now when nil).
	Now func() time.Time
	// MaxSkew is the accepted clock skew (DefaultMaxSkew when zero).
	MaxSkew time.Duration
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// authParts is a parsed Authorization header or presigned query.
type authParts struct {
	accessKeyID, scopeDate, region, service string
	signedHeaders                           []string
	signature                               string
	amzDate                                 time.Time
	presigned                               bool
	expires                                 time.Duration
	token                                   string
}

// Service returns the service of a request's credential scope ("" when the
// request is not signed or the scope cannot be read): the key to its error
// shape.
func Service(r *http.Request) string {
	p, err := parse(r)
	if err != nil {
		return ""
	}
	return p.service
}

// parse reads the SigV4 parts of r without checking them.
func parse(r *http.Request) (*authParts, *Error) {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	p := &authParts{}
	var credential, signedHeaders, date string
	switch {
	case auth != "":
		alg, rest, _ := strings.Cut(auth, " ")
		if alg != algorithm {
			return nil, errorf(Incomplete, "Authorization header requires the %s algorithm: only Signature Version 4 is accepted", algorithm)
		}
		for _, kv := range strings.Split(rest, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "Credential":
				credential = val
			case "SignedHeaders":
				signedHeaders = val
			case "Signature":
				p.signature = val
			}
		}
		var missing []string
		for _, m := range []struct{ name, v string }{{"Credential", credential}, {"Signature", p.signature}, {"SignedHeaders", signedHeaders}} {
			if m.v == "" {
				missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", m.name))
			}
		}
		if len(missing) > 0 {
			return nil, errorf(Incomplete, "%s", strings.Join(missing, " "))
		}
		date = r.Header.Get("X-Amz-Date")
		if date == "" {
			return nil, errorf(Incomplete, "Authorization header requires existence of a 'X-Amz-Date' header.")
		}
		p.token = r.Header.Get("X-Amz-Security-Token")
	case q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential"):
		p.presigned = true
		if alg := q.Get("X-Amz-Algorithm"); alg != algorithm {
			return nil, errorf(Incomplete, "X-Amz-Algorithm must be %s", algorithm)
		}
		credential, signedHeaders, p.signature, date = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
		var missing []string
		for _, m := range []struct{ name, v string }{{"X-Amz-Credential", credential}, {"X-Amz-Signature", p.signature},
			{"X-Amz-SignedHeaders", signedHeaders}, {"X-Amz-Date", date}, {"X-Amz-Expires", q.Get("X-Amz-Expires")}} {
			if m.v == "" {
				missing = append(missing, m.name)
			}
		}
		if len(missing) > 0 {
			return nil, errorf(Incomplete, "Query-string authentication requires the %s parameters.", strings.Join(missing, ", "))
		}
		secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignExpiry {
			return nil, errorf(Incomplete, "X-Amz-Expires must be a number of seconds from 1 to 604800")
		}
		p.expires = time.Duration(secs) * time.Second
		p.token = q.Get("X-Amz-Security-Token")
	default:
		return nil, errorf(Missing, "Missing Authentication Token")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return nil, errorf(Incomplete, "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request")
	}
	p.accessKeyID, p.scopeDate, p.region, p.service = scope[0], scope[1], scope[2], scope[3]
	p.signedHeaders = strings.Split(signedHeaders, ";")
	t, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return nil, errorf(Incomplete, "X-Amz-Date %q is not a date of the form 20060102T150405Z", date)
	}
	p.amzDate = t
	return p, nil
}

// Verify checks r's signature. body is the complete request body (the
// payload hash is computed over it unless the client signed
// UNSIGNED-PAYLOAD or a streaming payload). On success it returns who
// signed the request.
func (v *Verifier) Verify(r *http.Request, body []byte) (*Caller, *Error) {
	if r.Header.Get("Authorization") == "" && isPresignedV2(r) {
		return v.verifyPresignedV2(r)
	}
	p, aerr := parse(r)
	if aerr != nil {
		return nil, aerr
	}
	now := v.now()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if p.scopeDate != p.amzDate.Format("20060102") {
		return nil, errorf(Mismatch, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'", p.scopeDate, p.amzDate.Format("20060102"))
	}
	if p.presigned {
		if now.After(p.amzDate.Add(p.expires)) {
			return nil, errorf(Expired, "Request has expired")
		}
		if p.amzDate.After(now.Add(skew)) {
			return nil, errorf(Expired, "Request is not yet valid")
		}
	} else if d := now.Sub(p.amzDate); d > skew || d < -skew {
		return nil, errorf(Expired, "Signature expired: %s is now earlier than %s (%s - %d min.)",
			p.amzDate.Format(amzDateFormat), now.Add(-skew).UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat), int(skew/time.Minute))
	}
	cred, ok := v.Store.Lookup(p.accessKeyID)
	if !ok {
		return nil, errorf(UnknownKey, "The security token included in the request is invalid.")
	}
	if cred.SessionToken != "" || p.token != "" {
		if !equal(cred.SessionToken, p.token) {
			return nil, errorf(UnknownKey, "The security token included in the request is invalid.")
		}
	}

	payload, perr := payloadHash(r, p, body)
	if perr != nil {
		return nil, perr
	}
	want, err := v.recompute(r, p, cred, payload)
	if err != nil {
		return nil, errorf(Mismatch, "The request signature could not be recomputed: %v", err)
	}
	if !equal(want, p.signature) {
		return nil, errorf(Mismatch, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &Caller{AccessKeyID: cred.AccessKeyID, AccountID: cred.AccountID, ARN: cred.ARN, Name: cred.Name()}, nil
}

// payloadHash is the payload hash the client signed.
func payloadHash(r *http.Request, p *authParts, body []byte) (string, *Error) {
	if p.presigned {
		if h := r.URL.Query().Get("X-Amz-Content-Sha256"); h != "" {
			return h, nil
		}
		return unsigned, nil
	}
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	h := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case h == "":
		return actual, nil
	case isHexSHA256(h):
		if !strings.EqualFold(h, actual) {
			return "", errorf(PayloadMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return h, nil
	}
	return h, nil // UNSIGNED-PAYLOAD, STREAMING-…: signed as given
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// recompute signs a copy of r made of exactly what the client signed and
// returns the signature.
func (v *Verifier) recompute(r *http.Request, p *authParts, cred Credential, payload string) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := r.URL.Query()
	q.Del("X-Amz-Signature")
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(context.Background(), r.Method, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.URL.Path, req.URL.RawPath = r.URL.Path, r.URL.RawPath
	req.Host = r.Host
	req.ContentLength = 0
	for _, h := range p.signedHeaders {
		switch h = strings.ToLower(strings.TrimSpace(h)); h {
		case "", "host":
		case "content-length":
			n := r.ContentLength
			if cl := r.Header.Get("Content-Length"); cl != "" {
				n, _ = strconv.ParseInt(cl, 10, 64)
			}
			req.ContentLength = max(n, 0)
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}
	opts := func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = p.service == "s3"
		o.DisableHeaderHoisting = true
	}
	signer := v4.NewSigner()
	if p.presigned {
		signed, _, err := signer.PresignHTTP(context.Background(), creds, req, payload, p.service, p.region, p.amzDate, opts)
		if err != nil {
			return "", err
		}
		su, err := url.Parse(signed)
		if err != nil {
			return "", err
		}
		return su.Query().Get("X-Amz-Signature"), nil
	}
	if err := signer.SignHTTP(context.Background(), creds, req, payload, p.service, p.region, p.amzDate, opts); err != nil {
		return "", err
	}
	_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	return sig, nil
}

// unsignedAllowed reports whether r may come without a signature: the
// websocket upgrades of the data and control channels (their first frame
// carries the token the sandbox issued; the official client dials its
// StreamUrl with no signature), and the calls that are anonymous on AWS
// too: STS AssumeRoleWithWebIdentity/SAML, and SSM RegisterManagedInstance
// (the agent registers with an activation code and id, before it has
// credentials).
func unsignedAllowed(r *http.Request, body []byte) bool {
	if r.Header.Get("X-Amz-Target") == "AmazonSSM.RegisterManagedInstance" {
		return true
	}
	if r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		(strings.HasPrefix(r.URL.Path, "/v1/data-channel/") || strings.HasPrefix(r.URL.Path, "/v1/control-channel/")) {
		return true
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil {
			switch form.Get("Action") {
			case "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML":
				return true
			}
		}
	}
	return false
}

// Middleware verifies every request before next sees it: bodies over
// maxBody are refused without being read to the end (413 in AWS's shape),
// requests that are not correctly signed with a credential of the store
// are refused in their protocol family's shape, and the verified Caller is
// put in the request's context (CallerFrom). maxBody <= 0 means
// DefaultMaxBody.
func (v *Verifier) Middleware(next http.Handler, maxBody int64) http.Handler {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			tooLarge(r.ContentLength, maxBody).Write(w, r, Service(r))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			var me *http.MaxBytesError
			if errors.As(err, &me) {
				tooLarge(-1, maxBody).Write(w, r, Service(r))
				return
			}
			http.Error(w, "reading the request body failed", http.StatusBadRequest)
			return
		}
		if int64(len(body)) > maxBody {
			tooLarge(-1, maxBody).Write(w, r, Service(r))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		caller, aerr := v.Verify(r, body)
		if aerr != nil {
			if aerr.Kind == Missing && unsignedAllowed(r, body) {
				next.ServeHTTP(w, r)
				return
			}
			aerr.Write(w, r, Service(r))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), caller)))
	})
}

// tooLarge is the 413 for a body of n bytes (-1: unknown, chunked).
func tooLarge(n, limit int64) *Error {
	if n < 0 {
		return errorf(TooLarge, "The request body is larger than the sandbox's limit of %d bytes (ssmkit sandbox up --max-request-body).", limit)
	}
	return errorf(TooLarge, "The request body of %d bytes is larger than the sandbox's limit of %d bytes (ssmkit sandbox up --max-request-body).", n, limit)
}
