// Package ssmapi is the sandbox's AWS API face: an http.Handler that speaks
// AWS JSON 1.1 for the Systems Manager actions moto lacks (Session Manager,
// managed-instance inventory, the default host management setting, the few
// calls a real SSM Agent makes) and reverse-proxies every other request,
// body untouched, to a moto server.
//
// Served here (X-Amz-Target AmazonSSM.<Op>): DescribeInstanceInformation,
// StartSession, ResumeSession, TerminateSession, DescribeSessions,
// GetConnectionStatus, UpdateInstanceInformation, ListInstanceAssociations,
// and Get/Update/ResetServiceSetting for the default EC2 instance management
// role; plus ec2messages (EC2WindowsMessageDeliveryService.*) with empty
// answers. Errors use the AWS JSON 1.1 shape: HTTP 400, an x-amzn-ErrorType
// header and {"__type":…,"message":…}.
package ssmapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/sandbox/mgs"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
)

// Defaults for zero Options fields.
const (
	// DefaultAccountID is moto's default account id.
	DefaultAccountID = "123456789012"
	// DefaultRegion is the region assumed when none is configured.
	DefaultRegion = "us-east-1"
	// maxBody bounds the JSON bodies this package reads itself.
	maxBody = 1 << 20
)

// Target prefixes of the AWS JSON 1.1 services this handler looks at.
const (
	ssmTargetPrefix        = "AmazonSSM."
	ec2messagesTargetPrefx = "EC2WindowsMessageDeliveryService."
)

// Gateway is what ssmapi needs from the ssmmessages service (mgs.Service).
type Gateway interface {
	StartSession(ctx context.Context, spec mgs.SessionSpec) (streamURL, token string, err error)
	ResumeSession(sessionID string) (token string, err error)
	TerminateSession(sessionID, reason string) error
	Sessions() []mgs.SessionInfo
	Instances() []mgs.InstanceInfo
	// RemoveInstance forgets an instance's control channel (closing it):
	// a deregistered node leaves DescribeInstanceInformation.
	RemoveInstance(instanceID string)
}

// DocumentGetter reads documents (the SSM client pointed at moto).
type DocumentGetter interface {
	GetDocument(ctx context.Context, in *ssm.GetDocumentInput, optFns ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
}

// Options configure a Handler.
type Options struct {
	// MotoURL is where every request this handler does not serve goes,
	// e.g. "http://127.0.0.1:5000". Required.
	MotoURL string
	// Gateway is the ssmmessages service. Required.
	Gateway Gateway
	// Instances is the managed-instance registry. Nil means a fresh
	// MemoryInstances.
	Instances Instances
	// Documents reads session documents. Nil means an SSM client for
	// MotoURL with static credentials.
	Documents DocumentGetter
	// Region is reported in ARNs. Empty means DefaultRegion.
	Region string
	// AccountID is reported in ARNs. Empty means DefaultAccountID.
	AccountID string
	// Logf, if set, receives one line per notable event. It never receives
	// tokens or credentials.
	Logf func(format string, args ...any)
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// ProxyTransport carries proxied requests. Nil means http.DefaultTransport.
	ProxyTransport http.RoundTripper
	// PreferenceMinute is how long one minute of idleSessionTimeout and
	// maxSessionDuration lasts. Zero means a real minute; tests shorten it.
	PreferenceMinute time.Duration
	// Credentials, when set, learns the credentials STS and IAM answers
	// from moto mint (sigv4.Store.Record), and proxied requests carry the
	// verified caller's account to moto (x-moto-account-id), so that
	// moto's view and the sandbox's own agree.
	Credentials *sigv4.Store
	// OnDeregister, when set, is told the id of every node
	// DeregisterManagedInstance removed (the sandbox stops its agent).
	OnDeregister func(instanceID string)
	// LegacyNonInteractiveDocument serves AWS-StartNonInteractiveCommand
	// without its separateOutputStream, stdoutSeparatorPrefix and
	// stderrSeparatorPrefix parameters, as AWS may: StartSession with them
	// then fails with InvalidParameters. SetLegacyNonInteractiveDocument
	// switches it at run time.
	LegacyNonInteractiveDocument bool
}

// Handler serves the sandbox's AWS API endpoint. Create it with New.
type Handler struct {
	opts  Options
	now   func() time.Time
	proxy *httputil.ReverseProxy
	// privateDNS keeps what moto's ModifyVpcEndpoint ignores (vpce.go).
	privateDNS endpointDNS
	// logKeys keeps what moto's CloudWatch Logs lacks (motogaps.go).
	logKeys logKeys
	ops     map[string]func(*request) (any, error)

	legacyNonInteractive atomic.Bool

	mu          sync.Mutex
	settings    map[string]serviceSetting
	activations map[string]*activation
}

// SetLegacyNonInteractiveDocument switches the AWS-StartNonInteractiveCommand
// that StartSession uses (see Options.LegacyNonInteractiveDocument); it
// applies to sessions started afterwards.
func (h *Handler) SetLegacyNonInteractiveDocument(legacy bool) { h.legacyNonInteractive.Store(legacy) }

// New returns a Handler for opts.
func New(opts Options) (*Handler, error) {
	if opts.Gateway == nil {
		return nil, errors.New("ssmapi: a gateway is required")
	}
	target, err := url.Parse(opts.MotoURL)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return nil, fmt.Errorf("ssmapi: moto url %q must be an absolute http(s) url", opts.MotoURL)
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.PreferenceMinute <= 0 {
		opts.PreferenceMinute = time.Minute
	}
	if opts.Instances == nil {
		opts.Instances = NewMemoryInstances()
	}
	if opts.Documents == nil {
		opts.Documents = ssm.New(ssm.Options{
			BaseEndpoint: aws.String(opts.MotoURL),
			Region:       opts.Region,
			Credentials:  credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
			HTTPClient:   awsapi.HTTPClient(&http.Client{Transport: opts.ProxyTransport, Timeout: 30 * time.Second}),
		})
	}
	h := &Handler{opts: opts, now: opts.Now, settings: make(map[string]serviceSetting), activations: make(map[string]*activation)}
	h.legacyNonInteractive.Store(opts.LegacyNonInteractiveDocument)
	if h.now == nil {
		h.now = time.Now
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Del(motoAccountHeader)
			if c := sigv4.CallerFrom(pr.In.Context()); c != nil && opts.Credentials != nil {
				pr.Out.Header.Set(motoAccountHeader, c.AccountID)
			}
		},
		Transport:      opts.ProxyTransport,
		ModifyResponse: h.modifyProxiedResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.logf("proxy %s %s: %v", r.Method, r.URL.Path, err)
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the sandbox could not reach its moto backend")
		},
	}
	h.ops = map[string]func(*request) (any, error){
		"DescribeInstanceInformation": h.describeInstanceInformation,
		"UpdateInstanceInformation":   h.updateInstanceInformation,
		"ListInstanceAssociations":    h.listInstanceAssociations,
		"GetConnectionStatus":         h.getConnectionStatus,
		"StartSession":                h.startSession,
		"ResumeSession":               h.resumeSession,
		"TerminateSession":            h.terminateSession,
		"DescribeSessions":            h.describeSessions,
		"CreateActivation":            h.createActivation,
		"DescribeActivations":         h.describeActivations,
		"DeleteActivation":            h.deleteActivation,
		"RegisterManagedInstance":     h.registerManagedInstance,
		"DeregisterManagedInstance":   h.deregisterManagedInstance,
	}
	return h, nil
}

// equalSecret compares secrets (activation codes) in constant time.
func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// logf forwards to Options.Logf.
func (h *Handler) logf(format string, args ...any) {
	if h.opts.Logf != nil {
		h.opts.Logf(format, args...)
	}
}

// request is one AWS JSON 1.1 call this handler serves.
type request struct {
	ctx  context.Context
	r    *http.Request
	body []byte
}

// decode unmarshals the body into v; an empty body is an empty object.
func (q *request) decode(v any) error {
	b := bytes.TrimSpace(q.body)
	if len(b) == 0 {
		b = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return &apiError{Type: "ValidationException", Message: "could not parse the request body as JSON: " + jsonErrorText(err)}
	}
	if dec.More() {
		return &apiError{Type: "ValidationException", Message: "unexpected data after the JSON request body"}
	}
	return nil
}

// jsonErrorText describes a JSON error without echoing request data.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s must be %s", te.Field, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "malformed JSON"
}

// apiError is an AWS JSON 1.1 error.
type apiError struct {
	Status  int // 0 means 400
	Type    string
	Message string
}

// Error implements error.
func (e *apiError) Error() string { return e.Type + ": " + e.Message }

// errorf builds an apiError.
func errorf(typ, format string, args ...any) *apiError {
	return &apiError{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// writeError writes an AWS JSON 1.1 error.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	_, _ = w.Write(b)
}

// writeJSON writes a successful AWS JSON 1.1 answer.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerError", "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// ServeHTTP serves the SSM actions listed in the package comment and proxies
// everything else to moto.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if target != "" && r.Header.Get("Authorization") == "" && target != ssmTargetPrefix+"RegisterManagedInstance" {
		// AWS refuses unsigned JSON requests before anything else (except
		// the agent's anonymous RegisterManagedInstance); moto would route
		// them by guesswork (to S3) instead.
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	switch {
	case strings.HasPrefix(target, ec2messagesTargetPrefx):
		h.serveEC2Messages(w, r, strings.TrimPrefix(target, ec2messagesTargetPrefx))
		return
	case strings.HasPrefix(target, logsTargetPrefix) && h.serveLogsKey(w, r, strings.TrimPrefix(target, logsTargetPrefix)):
		return
	case strings.HasPrefix(target, ssmTargetPrefix):
		op := strings.TrimPrefix(target, ssmTargetPrefix)
		if fn, ok := h.ops[op]; ok {
			h.serve(w, r, fn)
			return
		}
		if isServiceSettingOp(op) {
			h.serveServiceSetting(w, r, op)
			return
		}
	}
	h.proxy.ServeHTTP(w, withEC2Form(r))
}

// readBody reads a bounded request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return nil, errorf("ValidationException", "request body larger than %d bytes", maxBody)
		}
		return nil, errorf("ValidationException", "reading the request body failed")
	}
	return b, nil
}

// serve runs one locally served operation.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, fn func(*request) (any, error)) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusBadRequest, "ValidationException", "AWS JSON 1.1 operations must be POST")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	out, err := fn(&request{ctx: r.Context(), r: r, body: body})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	writeJSON(w, out)
}

// writeErr writes err, which should be an *apiError; anything else is an
// internal error whose text is logged but not sent.
func (h *Handler) writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		status := ae.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		writeError(w, status, ae.Type, ae.Message)
		return
	}
	h.logf("internal error: %v", err)
	writeError(w, http.StatusInternalServerError, "InternalServerError", "internal error in the ssmkit sandbox")
}

// serveEC2Messages answers the ec2messages calls of a real agent: no
// messages, ever (REAL-AGENT.md).
func (h *Handler) serveEC2Messages(w http.ResponseWriter, r *http.Request, op string) {
	body, err := readBody(w, r)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	var in struct {
		Destination       string
		MessagesRequestId string
	}
	_ = json.Unmarshal(body, &in)
	switch op {
	case "GetMessages":
		writeJSON(w, map[string]any{
			"Destination":       in.Destination,
			"Messages":          []any{},
			"MessagesRequestId": in.MessagesRequestId,
		})
	case "AcknowledgeMessage", "SendReply", "FailMessage", "DeleteMessage", "GetEndpoint":
		writeJSON(w, map[string]any{})
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unknown operation "+op)
	}
}

// motoAccountHeader selects the account moto serves a request in.
const motoAccountHeader = "X-Moto-Account-Id"

// maxMintedAnswer bounds the STS/IAM answers read for minted credentials.
const maxMintedAnswer = 1 << 20

// modifyProxiedResponse records the credentials minted by STS and IAM
// answers (see Options.Credentials), and turns non-JSON error answers from
// moto to AWS JSON 1.1 requests (HTML for unknown actions, tracebacks for
// unimplemented ones) into an AWS-shaped error, so SDK callers never see
// HTML.
func (h *Handler) modifyProxiedResponse(resp *http.Response) error {
	if h.opts.Credentials != nil {
		h.recordMinted(resp)
	}
	h.endpointDNSAnswer(resp)
	h.logKeysInAnswer(resp)
	return modifyProxiedResponse(resp)
}

// recordMinted reads a successful query-protocol (STS, IAM) answer and
// records the credentials it mints.
func (h *Handler) recordMinted(resp *http.Response) {
	req := resp.Request
	if req == nil || resp.StatusCode != http.StatusOK || req.Method != http.MethodPost ||
		!strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") ||
		!strings.Contains(resp.Header.Get("Content-Type"), "xml") || resp.ContentLength > maxMintedAnswer {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxMintedAnswer+1))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil || len(raw) > maxMintedAnswer {
		return
	}
	if n := h.opts.Credentials.Record(sigv4.CallerFrom(req.Context()), raw); n > 0 {
		h.logf("recorded %d credential(s) minted through the sandbox", n)
	}
}

func modifyProxiedResponse(resp *http.Response) error {
	req := resp.Request
	if req == nil || req.Header.Get("X-Amz-Target") == "" || resp.StatusCode < 400 {
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	if strings.Contains(ct, "json") && resp.Header.Get("X-Amzn-ErrorType") != "" {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	var probe struct {
		Type string `json:"__type"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Type != "" {
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return nil
	}
	// moto answers actions it does not implement with a bare HTML 500, the
	// same page as for a crash; the former is by far the common cause.
	op := req.Header.Get("X-Amz-Target")
	typ := "UnknownOperationException"
	msg := fmt.Sprintf("the ssmkit sandbox does not implement %s (its moto backend answered HTTP %d)", op, resp.StatusCode)
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
	resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp.Header.Set("X-Amzn-ErrorType", typ)
	resp.StatusCode = http.StatusBadRequest
	resp.Status = "400 Bad Request"
	return nil
}

// epoch renders t as AWS JSON 1.1 timestamp (epoch seconds).
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
