package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// S3 still accepts the older Signature Version 2 in one form that real
// clients produce: the presigned URL (AWSAccessKeyId, Expires, Signature
// query parameters) that the AWS CLI v1's `aws s3 presign` hands out unless
// s3 signature_version is set to s3v4. The sandbox accepts that form, for
// S3 only; a SigV2 Authorization header is refused as incomplete.

// s3SubResources are the query parameters a SigV2 string to sign includes
// (the S3 documentation's sub-resources and response overrides).
var s3SubResources = map[string]bool{
	"accelerate": true, "acl": true, "cors": true, "defaultObjectAcl": true, "location": true, "logging": true,
	"partNumber": true, "policy": true, "requestPayment": true, "torrent": true, "versioning": true, "versionId": true,
	"versions": true, "website": true, "uploads": true, "uploadId": true, "response-content-type": true,
	"response-content-language": true, "response-expires": true, "response-cache-control": true,
	"response-content-disposition": true, "response-content-encoding": true, "delete": true, "lifecycle": true,
	"tagging": true, "restore": true, "storageClass": true, "notification": true, "replication": true,
	"analytics": true, "metrics": true, "inventory": true, "select": true, "select-type": true, "object-lock": true,
}

// isPresignedV2 reports whether r carries a SigV2 presigned query.
func isPresignedV2(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("AWSAccessKeyId") && q.Has("Signature")
}

// verifyPresignedV2 checks a SigV2 presigned S3 URL.
func (v *Verifier) verifyPresignedV2(r *http.Request) (*Caller, *Error) {
	q := r.URL.Query()
	akid, sig, exp := q.Get("AWSAccessKeyId"), q.Get("Signature"), q.Get("Expires")
	if akid == "" || sig == "" || exp == "" {
		return nil, errorf(Incomplete, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return nil, errorf(Incomplete, "Expires must be a number of seconds since the epoch")
	}
	if v.now().After(time.Unix(secs, 0)) {
		return nil, errorf(Expired, "Request has expired")
	}
	cred, ok := v.Store.Lookup(akid)
	if !ok {
		return nil, errorf(UnknownKey, "The AWS Access Key Id you provided does not exist in our records.")
	}
	if !equal(cred.SessionToken, q.Get("x-amz-security-token")) {
		return nil, errorf(UnknownKey, "The security token included in the request is invalid.")
	}
	mac := hmac.New(sha1.New, []byte(cred.SecretAccessKey))
	mac.Write([]byte(stringToSignV2(r, q, exp)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !equal(want, sig) {
		return nil, errorf(Mismatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return &Caller{AccessKeyID: cred.AccessKeyID, AccountID: cred.AccountID, ARN: cred.ARN, Name: cred.Name()}, nil
}

// stringToSignV2 is the SigV2 string to sign of a presigned request: verb,
// Content-MD5, Content-Type, Expires, the x-amz- parameters and the
// canonical resource (path-style path plus sub-resources).
func stringToSignV2(r *http.Request, q url.Values, expires string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(firstOf(q.Get("Content-MD5"), q.Get("content-md5"), r.Header.Get("Content-MD5")) + "\n")
	b.WriteString(firstOf(q.Get("Content-Type"), q.Get("content-type"), r.Header.Get("Content-Type")) + "\n")
	b.WriteString(expires + "\n")
	var amz []string
	for k := range q {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			amz = append(amz, lk+":"+strings.TrimSpace(q.Get(k)))
		}
	}
	sort.Strings(amz)
	for _, h := range amz {
		b.WriteString(h + "\n")
	}
	b.WriteString(virtualHostBucket(r.Host) + r.URL.EscapedPath())
	var sub []string
	for k, vals := range q {
		if !s3SubResources[k] {
			continue
		}
		if vals[0] == "" {
			sub = append(sub, k)
		} else {
			sub = append(sub, k+"="+vals[0])
		}
	}
	if len(sub) > 0 {
		sort.Strings(sub)
		b.WriteString("?" + strings.Join(sub, "&"))
	}
	return b.String()
}

// virtualHostBucket is "/<bucket>" for a virtual-hosted S3 request
// (bucket.s3.<region>.amazonaws.com, through the proxy): the canonical
// resource always starts with the bucket.
func virtualHostBucket(host string) string {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if !strings.HasSuffix(h, ".amazonaws.com") {
		return ""
	}
	for _, marker := range []string{".s3.", ".s3-"} {
		if i := strings.Index(h, marker); i > 0 {
			return "/" + h[:i]
		}
	}
	return ""
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
