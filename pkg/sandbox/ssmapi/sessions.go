package ssmapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/sandbox/mgs"
	"github.com/ssmkit/ssmkit/pkg/sandbox/sigv4"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// credentialRE pulls the access key id out of a SigV4 Authorization header.
var credentialRE = regexp.MustCompile(`Credential=([A-Za-z0-9_+=,.@\-]+)/`)

// caller identifies who made a request: the caller the sandbox's SigV4
// check verified (sigv4.CallerFrom), whose ARN and user or role session
// name AWS puts in the session owner and id. A handler used without that
// check (unit tests) falls back to the access key id of the Authorization
// header.
func (h *Handler) caller(r *http.Request) (arn, name string) {
	if c := sigv4.CallerFrom(r.Context()); c != nil && c.ARN != "" {
		return c.ARN, c.Name
	}
	name = "sandbox"
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		name = m[1]
	}
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/ssmkit-sandbox/%s", h.opts.AccountID, name), name
}

// startSession implements StartSession.
func (h *Handler) startSession(q *request) (any, error) {
	var in struct {
		Target       string
		DocumentName string
		Parameters   map[string][]string
		Reason       string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.Target == "" {
		return nil, errorf("ValidationException", "1 validation error detected: Value null at 'target' failed to satisfy constraint: Member must not be null")
	}
	docName := in.DocumentName
	if docName == "" {
		docName = ssmdoc.Shell
	}

	// Target: known (registry or control channel) and online.
	all, err := h.instances(q.ctx)
	if err != nil {
		return nil, err
	}
	var target *instanceView
	for i := range all {
		if all[i].InstanceID == in.Target {
			target = &all[i]
		}
	}
	if target == nil {
		return nil, errorf("InvalidInstanceId", "%s is not a valid managed instance", in.Target)
	}
	if target.pingStatus != mgs.PingStatusOnline {
		return nil, errorf("TargetNotConnected", "%s is not connected.", in.Target)
	}

	doc, found, err := h.getDocument(q.ctx, docName)
	if err != nil {
		return nil, err
	}
	prefInputs, err := h.loadPreferences(q.ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		if docName != ssmdoc.Shell {
			return nil, errorf("InvalidDocument", "Document %s does not exist in your account", docName)
		}
		// No preferences saved yet: the AWS default shell document.
		doc = &sessionDoc{SchemaVersion: "1.0", SessionType: ssmdoc.SessionTypeStandardStream}
	}
	vals, err := resolveParameters(docName, doc, in.Parameters)
	if err != nil {
		return nil, err
	}

	// Inputs: the account preferences, overridden by the document's own.
	inputs := make(map[string]any, len(prefInputs)+len(doc.Inputs))
	for k, v := range prefInputs {
		inputs[k] = v
	}
	for k, v := range doc.Inputs {
		inputs[k] = v
	}
	inputs = substitute(inputs, vals).(map[string]any)
	idle, maxDur, err := durations(inputs, h.opts.PreferenceMinute)
	if err != nil {
		return nil, err
	}
	wireInputs, err := sessionInputs(inputs)
	if err != nil {
		return nil, err
	}
	var props json.RawMessage
	if len(doc.Properties) > 0 && string(doc.Properties) != "null" {
		var p any
		if err := json.Unmarshal(doc.Properties, &p); err != nil {
			return nil, errorf("InvalidDocument", "document %s has invalid properties", docName)
		}
		props, err = json.Marshal(substitute(p, vals))
		if err != nil {
			return nil, err
		}
	}

	owner, name := h.caller(q.r)
	spec := mgs.SessionSpec{
		SessionID:    mgs.NewSessionID(name),
		Target:       in.Target,
		Owner:        owner,
		DocumentName: docName,
		Document: wire.SessionDocument{
			SchemaVersion: "1.0",
			Description:   doc.Description,
			SessionType:   doc.SessionType,
			Inputs:        wireInputs,
			Parameters:    map[string]json.RawMessage{},
			Properties:    props,
		},
		Reason:      in.Reason,
		IdleTimeout: idle,
		MaxDuration: maxDur,
	}
	streamURL, token, err := h.opts.Gateway.StartSession(q.ctx, spec)
	switch {
	case errors.Is(err, mgs.ErrTargetNotConnected):
		return nil, errorf("TargetNotConnected", "%s is not connected.", in.Target)
	case err != nil:
		return nil, err
	}
	h.logf("StartSession %s on %s with %s", spec.SessionID, in.Target, docName)
	return map[string]any{"SessionId": spec.SessionID, "StreamUrl": streamURL, "TokenValue": token}, nil
}

// findSession returns the gateway's record of id.
func (h *Handler) findSession(id string) (mgs.SessionInfo, bool) {
	for _, s := range h.opts.Gateway.Sessions() {
		if s.SessionID == id {
			return s, true
		}
	}
	return mgs.SessionInfo{}, false
}

// resumeSession implements ResumeSession. A session that is over gets a
// null TokenValue, which the client reports as a timeout (§9.8).
func (h *Handler) resumeSession(q *request) (any, error) {
	var in struct{ SessionId string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.SessionId == "" {
		return nil, errorf("ValidationException", "SessionId is required")
	}
	s, ok := h.findSession(in.SessionId)
	if !ok {
		return nil, errorf("DoesNotExistException", "Session %s does not exist", in.SessionId)
	}
	token, err := h.opts.Gateway.ResumeSession(in.SessionId)
	if errors.Is(err, mgs.ErrSessionNotFound) {
		return nil, errorf("DoesNotExistException", "Session %s does not exist", in.SessionId)
	}
	if err != nil {
		return nil, err
	}
	var tok any
	if token != "" {
		tok = token
	}
	return map[string]any{"SessionId": in.SessionId, "StreamUrl": s.StreamURL, "TokenValue": tok}, nil
}

// terminateSession implements TerminateSession.
func (h *Handler) terminateSession(q *request) (any, error) {
	var in struct{ SessionId string }
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.SessionId == "" {
		return nil, errorf("ValidationException", "SessionId is required")
	}
	err := h.opts.Gateway.TerminateSession(in.SessionId, "")
	if errors.Is(err, mgs.ErrSessionNotFound) {
		return nil, errorf("DoesNotExistException", "Session %s does not exist", in.SessionId)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"SessionId": in.SessionId}, nil
}

// sessionOut is one DescribeSessions entry.
type sessionOut struct {
	SessionId          string
	Target             string
	Status             string
	StartDate          float64
	EndDate            *float64 `json:",omitempty"`
	DocumentName       string   `json:",omitempty"`
	Owner              string   `json:",omitempty"`
	Reason             string   `json:",omitempty"`
	Details            string   `json:",omitempty"`
	MaxSessionDuration string   `json:",omitempty"`
}

// describeSessions implements DescribeSessions.
func (h *Handler) describeSessions(q *request) (any, error) {
	var in struct {
		State   string
		Filters []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		MaxResults int
		NextToken  string
	}
	if err := q.decode(&in); err != nil {
		return nil, err
	}
	if in.State != "Active" && in.State != "History" {
		return nil, errorf("ValidationException", "State must be Active or History")
	}
	if in.MaxResults != 0 && (in.MaxResults < 1 || in.MaxResults > 200) {
		return nil, errorf("ValidationException", "MaxResults must be between 1 and 200")
	}
	type pred func(mgs.SessionInfo) bool
	var preds []pred
	for _, f := range in.Filters {
		v := f.Value
		if v == "" {
			return nil, errorf("InvalidFilterValue", "filter %q has an empty value", f.Key)
		}
		switch f.Key {
		case "Target":
			preds = append(preds, func(s mgs.SessionInfo) bool { return s.Target == v })
		case "Owner":
			preds = append(preds, func(s mgs.SessionInfo) bool { return s.Owner == v })
		case "Status":
			preds = append(preds, func(s mgs.SessionInfo) bool { return s.Status == v })
		case "SessionId":
			preds = append(preds, func(s mgs.SessionInfo) bool { return s.SessionID == v })
		case "InvokedAfter", "InvokedBefore":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, errorf("InvalidFilterValue", "filter %s needs an RFC 3339 time such as 2024-08-29T00:00:00Z", f.Key)
			}
			if f.Key == "InvokedAfter" {
				preds = append(preds, func(s mgs.SessionInfo) bool { return !s.StartDate.Before(t) })
			} else {
				preds = append(preds, func(s mgs.SessionInfo) bool { return s.StartDate.Before(t) })
			}
		default:
			return nil, errorf("InvalidFilterKey", "unsupported filter key %q", f.Key)
		}
	}
	var list []sessionOut
	all := h.opts.Gateway.Sessions()
	account := h.account(q.ctx)
	// Newest first, as the console and CLI show them.
	for i := len(all) - 1; i >= 0; i-- {
		s := all[i]
		history := s.Status == mgs.StatusTerminated || s.Status == mgs.StatusFailed
		if history != (in.State == "History") || ownerAccount(s.Owner, h.opts.AccountID) != account {
			continue
		}
		ok := true
		for _, p := range preds {
			ok = ok && p(s)
		}
		if !ok {
			continue
		}
		o := sessionOut{
			SessionId: s.SessionID, Target: s.Target, Status: s.Status, StartDate: epoch(s.StartDate),
			DocumentName: s.DocumentName, Owner: s.Owner, Reason: s.Reason, Details: s.Details,
		}
		if !s.EndDate.IsZero() {
			e := epoch(s.EndDate)
			o.EndDate = &e
		}
		if s.MaxDuration > 0 {
			o.MaxSessionDuration = fmt.Sprint(int(s.MaxDuration / time.Minute))
		}
		list = append(list, o)
	}
	page, next, err := paginate(list, in.MaxResults, 20, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"Sessions": page}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// ownerAccount is the account of a session owner ARN (def when it has none).
func ownerAccount(owner, def string) string {
	if parts := strings.SplitN(owner, ":", 6); len(parts) == 6 && parts[4] != "" {
		return parts[4]
	}
	return def
}
