package ssmapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
)

// Two calls moto 5.2.1 does not carry out, which the doctor's fixes make:
//
//   - ModifyVpcEndpoint ignores PrivateDnsEnabled (it applies subnets,
//     route tables, groups and the policy only), so an endpoint keeps the
//     private DNS it was created with (network.endpoints.private-dns);
//   - CloudWatch Logs' AssociateKmsKey is not implemented at all
//     (logging.cw-encryption).
//
// The handler keeps these changes itself, per account, and shows them in
// DescribeVpcEndpoints and DescribeLogGroups answers, as AWS would.

// endpointDNS is the private DNS setting of endpoints changed after
// creation, by account and endpoint ID.
type endpointDNS struct {
	mu sync.Mutex
	m  map[string]bool
}

func (e *endpointDNS) set(account, id string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]bool{}
	}
	e.m[account+"/"+id] = on
}

func (e *endpointDNS) get(account, id string) (bool, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	on, ok := e.m[account+"/"+id]
	return on, ok
}

// ec2FormKey carries an EC2 query request's parsed form from the request
// to its proxied answer.
type ec2FormKey struct{}

// withEC2Form reads an EC2 query request's form (ModifyVpcEndpoint and
// DescribeVpcEndpoints only) into the request's context, leaving the body
// for the proxy.
func withEC2Form(r *http.Request) *http.Request {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return r
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil || len(raw) > maxBody {
		return r
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return r
	}
	switch form.Get("Action") {
	case "ModifyVpcEndpoint", "DescribeVpcEndpoints":
		return r.WithContext(context.WithValue(r.Context(), ec2FormKey{}, form))
	}
	return r
}

// endpointDNSAnswer records a successful ModifyVpcEndpoint's
// PrivateDnsEnabled and shows recorded settings in DescribeVpcEndpoints.
func (h *Handler) endpointDNSAnswer(resp *http.Response) {
	req := resp.Request
	if req == nil || resp.StatusCode != http.StatusOK {
		return
	}
	form, ok := req.Context().Value(ec2FormKey{}).(url.Values)
	if !ok {
		return
	}
	account := ""
	if c := sigv4.CallerFrom(req.Context()); c != nil {
		account = c.AccountID
	}
	switch form.Get("Action") {
	case "ModifyVpcEndpoint":
		if v := form.Get("PrivateDnsEnabled"); v != "" {
			if on, err := strconv.ParseBool(v); err == nil {
				h.privateDNS.set(account, form.Get("VpcEndpointId"), on)
			}
		}
	case "DescribeVpcEndpoints":
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		_ = resp.Body.Close()
		out := h.privateDNSInAnswer(account, string(raw))
		resp.Body = io.NopCloser(strings.NewReader(out))
		if err == nil {
			resp.ContentLength = int64(len(out))
			resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
		}
	}
}

// privateDNSInAnswer rewrites <privateDnsEnabled> of each endpoint whose
// setting was changed; in the answer each endpoint's ID comes before it.
func (h *Handler) privateDNSInAnswer(account, xml string) string {
	const idTag, dnsOpen, dnsClose = "<vpcEndpointId>", "<privateDnsEnabled>", "</privateDnsEnabled>"
	var b strings.Builder
	for {
		i := strings.Index(xml, idTag)
		if i < 0 {
			b.WriteString(xml)
			return b.String()
		}
		j := strings.Index(xml[i:], "</vpcEndpointId>")
		if j < 0 {
			b.WriteString(xml)
			return b.String()
		}
		id := xml[i+len(idTag) : i+j]
		b.WriteString(xml[:i+j])
		xml = xml[i+j:]
		on, changed := h.privateDNS.get(account, id)
		next := strings.Index(xml[1:], idTag)
		d := strings.Index(xml, dnsOpen)
		if !changed || d < 0 || next >= 0 && d > next+1 {
			continue
		}
		e := strings.Index(xml[d:], dnsClose)
		if e < 0 {
			continue
		}
		b.WriteString(xml[:d+len(dnsOpen)])
		b.WriteString(strconv.FormatBool(on))
		xml = xml[d+e:]
	}
}

// logKeys are the KMS keys associated with log groups through
// AssociateKmsKey, by account and group name ("" after
// DisassociateKmsKey).
type logKeys struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *logKeys) set(account, group, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]string{}
	}
	l.m[account+"/"+group] = key
}

func (l *logKeys) get(account, group string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.m[account+"/"+group]
	return k, ok
}

// logsTargetPrefix starts CloudWatch Logs' X-Amz-Target values.
const logsTargetPrefix = "Logs_20140328."

// serveLogsKey answers AssociateKmsKey and DisassociateKmsKey for a log
// group that exists (asked of moto); false means the request is not one of
// them.
func (h *Handler) serveLogsKey(w http.ResponseWriter, r *http.Request, op string) bool {
	if op != "AssociateKmsKey" && op != "DisassociateKmsKey" {
		return false
	}
	body, err := readBody(w, r)
	if err != nil {
		h.writeErr(w, err)
		return true
	}
	var in struct {
		LogGroupName string `json:"logGroupName"`
		KmsKeyID     string `json:"kmsKeyId"`
	}
	if json.Unmarshal(body, &in) != nil || in.LogGroupName == "" || op == "AssociateKmsKey" && in.KmsKeyID == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "logGroupName (and for AssociateKmsKey kmsKeyId) are required")
		return true
	}
	// Does the group exist? Ask moto the way the client would.
	probe, _ := json.Marshal(map[string]any{"logGroupNamePrefix": in.LogGroupName})
	pr := r.Clone(r.Context())
	pr.Body, pr.ContentLength = io.NopCloser(bytes.NewReader(probe)), int64(len(probe))
	pr.Header.Set("X-Amz-Target", logsTargetPrefix+"DescribeLogGroups")
	rec := &recorder{header: http.Header{}}
	h.proxy.ServeHTTP(rec, pr)
	var groups struct {
		LogGroups []struct {
			LogGroupName string `json:"logGroupName"`
		} `json:"logGroups"`
	}
	found := false
	if rec.status == http.StatusOK && json.Unmarshal(rec.body.Bytes(), &groups) == nil {
		for _, g := range groups.LogGroups {
			found = found || g.LogGroupName == in.LogGroupName
		}
	}
	if !found {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "The specified log group does not exist.")
		return true
	}
	account := ""
	if c := sigv4.CallerFrom(r.Context()); c != nil {
		account = c.AccountID
	}
	h.logKeys.set(account, in.LogGroupName, in.KmsKeyID)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
	return true
}

// recorder is a minimal http.ResponseWriter that keeps the answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// logKeysInAnswer sets kmsKeyId in a DescribeLogGroups answer for the
// groups whose key was changed.
func (h *Handler) logKeysInAnswer(resp *http.Response) {
	req := resp.Request
	if req == nil || resp.StatusCode != http.StatusOK || req.Header.Get("X-Amz-Target") != logsTargetPrefix+"DescribeLogGroups" {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if err != nil {
		return
	}
	account := ""
	if c := sigv4.CallerFrom(req.Context()); c != nil {
		account = c.AccountID
	}
	var answer map[string]any
	if json.Unmarshal(raw, &answer) != nil {
		return
	}
	groups, _ := answer["logGroups"].([]any)
	changed := false
	for _, g := range groups {
		m, _ := g.(map[string]any)
		name, _ := m["logGroupName"].(string)
		if key, ok := h.logKeys.get(account, name); ok {
			changed = true
			if key == "" {
				delete(m, "kmsKeyId")
			} else {
				m["kmsKeyId"] = key
			}
		}
	}
	if !changed {
		return
	}
	out, err := json.Marshal(answer)
	if err != nil {
		return
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
}
