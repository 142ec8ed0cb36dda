package sigv4

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Kind is what went wrong with a request's authentication.
type Kind int

// The authentication failures AWS distinguishes.
const (
	// Missing: no Authorization header and no presigned query.
	Missing Kind = iota + 1
	// Incomplete: the Authorization header or presigned query lacks parts.
	Incomplete
	// UnknownKey: the access key id is not one the sandbox issued, or the
	// session token does not belong to it.
	UnknownKey
	// Mismatch: the recomputed signature differs.
	Mismatch
	// Expired: the request time is outside the allowed skew, or a
	// presigned URL has expired.
	Expired
	// PayloadMismatch: X-Amz-Content-Sha256 does not match the body.
	PayloadMismatch
	// TooLarge: the body exceeds the sandbox's limit.
	TooLarge
)

// Error is an authentication failure. Message never holds secrets.
type Error struct {
	Kind    Kind
	Message string
}

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Family is an AWS protocol family: each has its own error shape.
type Family int

// Protocol families.
const (
	// FamilyJSON: AWS JSON 1.0/1.1 (X-Amz-Target): {"__type","message"}.
	FamilyJSON Family = iota
	// FamilyRESTJSON: REST-JSON services (ssmmessages): {"message"} with
	// the code in X-Amzn-ErrorType.
	FamilyRESTJSON
	// FamilyQuery: query protocol (STS, IAM…): <ErrorResponse><Error>.
	FamilyQuery
	// FamilyEC2: EC2's query dialect: <Response><Errors><Error>.
	FamilyEC2
	// FamilyS3: REST-XML S3: <Error><Code>.
	FamilyS3
)

// FamilyOf guesses the protocol family of r from its headers, its form
// and the service of its credential scope (service may be empty).
func FamilyOf(r *http.Request, service string) Family {
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		return FamilyJSON
	case service == "ec2":
		return FamilyEC2
	case service == "s3":
		return FamilyS3
	case strings.HasPrefix(r.URL.Path, "/v1/control-channel/"), strings.HasPrefix(r.URL.Path, "/v1/data-channel/"):
		return FamilyRESTJSON
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"), r.URL.Query().Get("Action") != "":
		if strings.HasPrefix(strings.ToLower(r.Host), "ec2.") {
			return FamilyEC2
		}
		return FamilyQuery
	case service != "":
		return FamilyRESTJSON
	}
	return FamilyS3
}

// codes are the error code and HTTP status per family and kind, as AWS
// answers them.
var codes = map[Family]map[Kind]struct {
	code   string
	status int
}{
	FamilyJSON: {
		Missing:         {"MissingAuthenticationTokenException", 400},
		Incomplete:      {"IncompleteSignatureException", 400},
		UnknownKey:      {"UnrecognizedClientException", 400},
		Mismatch:        {"InvalidSignatureException", 400},
		Expired:         {"InvalidSignatureException", 400},
		PayloadMismatch: {"InvalidSignatureException", 400},
		TooLarge:        {"RequestEntityTooLargeException", 413},
	},
	FamilyRESTJSON: {
		Missing:         {"MissingAuthenticationTokenException", 403},
		Incomplete:      {"IncompleteSignatureException", 403},
		UnknownKey:      {"UnrecognizedClientException", 403},
		Mismatch:        {"InvalidSignatureException", 403},
		Expired:         {"InvalidSignatureException", 403},
		PayloadMismatch: {"InvalidSignatureException", 403},
		TooLarge:        {"RequestEntityTooLargeException", 413},
	},
	FamilyQuery: {
		Missing:         {"MissingAuthenticationToken", 403},
		Incomplete:      {"IncompleteSignature", 400},
		UnknownKey:      {"InvalidClientTokenId", 403},
		Mismatch:        {"SignatureDoesNotMatch", 403},
		Expired:         {"SignatureDoesNotMatch", 403},
		PayloadMismatch: {"SignatureDoesNotMatch", 403},
		TooLarge:        {"RequestEntityTooLarge", 413},
	},
	FamilyEC2: {
		Missing:         {"MissingAuthenticationToken", 401},
		Incomplete:      {"IncompleteSignature", 400},
		UnknownKey:      {"AuthFailure", 401},
		Mismatch:        {"SignatureDoesNotMatch", 403},
		Expired:         {"RequestExpired", 400},
		PayloadMismatch: {"SignatureDoesNotMatch", 403},
		TooLarge:        {"RequestEntityTooLarge", 413},
	},
	FamilyS3: {
		Missing:         {"AccessDenied", 403},
		Incomplete:      {"AuthorizationHeaderMalformed", 400},
		UnknownKey:      {"InvalidAccessKeyId", 403},
		Mismatch:        {"SignatureDoesNotMatch", 403},
		Expired:         {"RequestTimeTooSkewed", 403},
		PayloadMismatch: {"XAmzContentSHA256Mismatch", 400},
		TooLarge:        {"EntityTooLarge", 413},
	},
}

// Code returns the AWS error code and HTTP status of e in family f.
func (e *Error) Code(f Family) (string, int) {
	c, ok := codes[f][e.Kind]
	if !ok {
		return "AccessDenied", http.StatusForbidden
	}
	if f == FamilyS3 && e.Kind == Expired && strings.HasPrefix(e.Message, "Request has expired") {
		return "AccessDenied", http.StatusForbidden // an expired presigned URL
	}
	return c.code, c.status
}

// Write answers r with e in the shape of its protocol family.
func (e *Error) Write(w http.ResponseWriter, r *http.Request, service string) {
	f := FamilyOf(r, service)
	code, status := e.Code(f)
	reqID := uuid.NewString()
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.Header().Set("X-Amzn-ErrorType", code)
	if e.Kind == TooLarge {
		w.Header().Set("Connection", "close")
	}
	var body []byte
	switch f {
	case FamilyJSON:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		body, _ = json.Marshal(map[string]string{"__type": code, "message": e.Message})
	case FamilyRESTJSON:
		w.Header().Set("Content-Type", "application/json")
		body, _ = json.Marshal(map[string]string{"message": e.Message})
	case FamilyQuery:
		w.Header().Set("Content-Type", "text/xml")
		body = xmlDoc(struct {
			XMLName xml.Name `xml:"ErrorResponse"`
			Error   struct {
				Type    string
				Code    string
				Message string
			}
			RequestID string `xml:"RequestId"`
		}{Error: struct{ Type, Code, Message string }{"Sender", code, e.Message}, RequestID: reqID})
	case FamilyEC2:
		w.Header().Set("Content-Type", "text/xml")
		type ec2Err struct{ Code, Message string }
		body = xmlDoc(struct {
			XMLName   xml.Name `xml:"Response"`
			Errors    []ec2Err `xml:"Errors>Error"`
			RequestID string
		}{Errors: []ec2Err{{code, e.Message}}, RequestID: reqID})
	default:
		w.Header().Set("Content-Type", "application/xml")
		body = xmlDoc(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string
			Message   string
			RequestID string `xml:"RequestId"`
		}{Code: code, Message: e.Message, RequestID: reqID})
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func xmlDoc(v any) []byte {
	b, _ := xml.Marshal(v)
	return append([]byte(xml.Header), b...)
}
