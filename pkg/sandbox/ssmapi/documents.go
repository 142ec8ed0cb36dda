package ssmapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/prefs"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

// portPattern is the allowedPattern of the AWS port parameters.
const portPattern = `^([1-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`

// localPortPattern also allows 0 (any free port).
const localPortPattern = `^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`

// commandProperties are the properties of the AWS command documents.
const commandProperties = `{
    "windows": {"commands": "{{ command }}", "runAsElevated": false},
    "linux": {"commands": "{{ command }}", "runAsElevated": false},
    "macos": {"commands": "{{ command }}", "runAsElevated": false}
  }`

// AWSSessionDocuments holds the content of the AWS-owned Session documents
// the sandbox provides, keyed by name. The shapes follow the documents AWS
// publishes (SESSION-PROTOCOL.md §8.1; Session document schema).
var AWSSessionDocuments = map[string]string{
	ssmdoc.PortForwarding: `{
  "schemaVersion": "1.0",
  "description": "Document to start port forwarding session over Session Manager",
  "sessionType": "Port",
  "parameters": {
    "portNumber": {"type": "String", "description": "(Optional) Port number of the server on the instance", "allowedPattern": "` + portPattern + `", "default": "80"},
    "localPortNumber": {"type": "String", "description": "(Optional) Port number on local machine to forward traffic to. An open port is chosen at run-time if not provided", "allowedPattern": "` + localPortPattern + `", "default": "0"}
  },
  "properties": {"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding", "localPortNumber": "{{ localPortNumber }}"}
}`,
	ssmdoc.PortForwardingToRemoteHost: `{
  "schemaVersion": "1.0",
  "description": "Document to start port forwarding session over Session Manager to a remote host",
  "sessionType": "Port",
  "parameters": {
    "host": {"type": "String", "description": "(Required) The IP address or DNS name of the remote host", "allowedPattern": "^[^,$^&\\(\\)!;'\"<>\\\u0060{}\\[\\]\\|#=]{3,}$"},
    "portNumber": {"type": "String", "description": "(Optional) Port number of the server on the remote host", "allowedPattern": "` + portPattern + `", "default": "80"},
    "localPortNumber": {"type": "String", "description": "(Optional) Port number on local machine to forward traffic to. An open port is chosen at run-time if not provided", "allowedPattern": "` + localPortPattern + `", "default": "0"}
  },
  "properties": {"host": "{{ host }}", "portNumber": "{{ portNumber }}", "type": "LocalPortForwarding", "localPortNumber": "{{ localPortNumber }}"}
}`,
	ssmdoc.SSH: `{
  "schemaVersion": "1.0",
  "description": "Document to start SSH session over Session Manager",
  "sessionType": "Port",
  "parameters": {
    "portNumber": {"type": "String", "description": "(Optional) Port number of SSH server on the instance", "allowedPattern": "` + portPattern + `", "default": "22"}
  },
  "properties": {"portNumber": "{{ portNumber }}"}
}`,
	ssmdoc.InteractiveCommand: `{
  "schemaVersion": "1.0",
  "description": "Document to run single interactive command on an instance",
  "sessionType": "InteractiveCommands",
  "parameters": {
    "command": {"type": "String", "description": "The command to run on the instance"}
  },
  "properties": ` + commandProperties + `
}`,
	ssmdoc.NonInteractiveCommand: `{
  "schemaVersion": "1.0",
  "description": "Document to run single non interactive command on an instance",
  "sessionType": "NonInteractiveCommands",
  "parameters": {
    "command": {"type": "String", "description": "The command to run on the instance"},
    "separateOutputStream": {"type": "String", "description": "(Optional) Separate the StdOut, StdErr and Exit code for Non-interactive command output", "allowedValues": ["true", "false"], "default": "false"},
    "stdoutSeparatorPrefix": {"type": "String", "description": "(Optional) Unique string as the prefix for StdOut partition", "allowedPattern": "^[0-9a-zA-Z\\r\\n_:-]{0,30}$", "default": ""},
    "stderrSeparatorPrefix": {"type": "String", "description": "(Optional) Unique string as the prefix for StdErr partition", "allowedPattern": "^[0-9a-zA-Z\\r\\n_:-]{0,30}$", "default": ""}
  },
  "properties": ` + nonInteractiveProperties + `
}`,
}

// legacyNonInteractiveDocument is AWS-StartNonInteractiveCommand as it was
// published before the separate-output parameters existed, and as a region
// may still serve it: only "command". StartSession with
// separateOutputStream or a separator prefix then fails with
// InvalidParameters, as it does on AWS for any undeclared parameter.
const legacyNonInteractiveDocument = `{
  "schemaVersion": "1.0",
  "description": "Document to run single non interactive command on an instance",
  "sessionType": "NonInteractiveCommands",
  "parameters": {
    "command": {"type": "String", "description": "The command to run on the instance"}
  },
  "properties": ` + commandProperties + `
}`

// nonInteractiveProperties are AWS-StartNonInteractiveCommand's: the
// command plus the separate-output switches its parameters feed.
const nonInteractiveProperties = `{
    "windows": {"commands": "{{ command }}", "runAsElevated": false, "separateOutputStream": "{{ separateOutputStream }}", "stdOutSeparatorPrefix": "{{ stdoutSeparatorPrefix }}", "stdErrSeparatorPrefix": "{{ stderrSeparatorPrefix }}"},
    "linux": {"commands": "{{ command }}", "runAsElevated": false, "separateOutputStream": "{{ separateOutputStream }}", "stdOutSeparatorPrefix": "{{ stdoutSeparatorPrefix }}", "stdErrSeparatorPrefix": "{{ stderrSeparatorPrefix }}"},
    "macos": {"commands": "{{ command }}", "runAsElevated": false, "separateOutputStream": "{{ separateOutputStream }}", "stdOutSeparatorPrefix": "{{ stdoutSeparatorPrefix }}", "stdErrSeparatorPrefix": "{{ stderrSeparatorPrefix }}"}
  }`

// DocumentCreator creates documents (the SSM client pointed at moto).
type DocumentCreator interface {
	CreateDocument(ctx context.Context, in *ssm.CreateDocumentInput, optFns ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error)
}

// EnsureSessionDocuments creates the AWSSessionDocuments in moto, so that
// GetDocument, DescribeDocument and ListDocuments through the sandbox see
// them as a real account does; legacyNonInteractive stores the legacy
// AWS-StartNonInteractiveCommand. Documents that already exist are left
// alone. StartSession does not depend on this: it knows these documents
// itself.
func EnsureSessionDocuments(ctx context.Context, client DocumentCreator, legacyNonInteractive bool) error {
	for _, name := range sortedKeys(AWSSessionDocuments) {
		content, _ := sessionDocumentContent(name, legacyNonInteractive)
		_, err := client.CreateDocument(ctx, &ssm.CreateDocumentInput{
			Name:           aws.String(name),
			Content:        aws.String(content),
			DocumentType:   ssmtypes.DocumentTypeSession,
			DocumentFormat: ssmtypes.DocumentFormatJson,
		})
		var exists *ssmtypes.DocumentAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("creating session document %s: %w", name, err)
		}
	}
	return nil
}

// sessionDoc is a parsed Session document.
type sessionDoc struct {
	raw           string                     // the content as stored
	SchemaVersion string                     `json:"schemaVersion"`
	Description   string                     `json:"description"`
	SessionType   string                     `json:"sessionType"`
	Inputs        map[string]any             `json:"inputs"`
	Parameters    map[string]paramDefinition `json:"parameters"`
	Properties    json.RawMessage            `json:"properties"`
}

// paramDefinition is one parameter of a document.
type paramDefinition struct {
	Type           string          `json:"type"`
	Description    string          `json:"description"`
	Default        json.RawMessage `json:"default"`
	AllowedPattern string          `json:"allowedPattern"`
	AllowedValues  []string        `json:"allowedValues"`
}

// parseSessionDoc parses JSON document content.
func parseSessionDoc(name, content string) (*sessionDoc, error) {
	var d sessionDoc
	if err := json.Unmarshal([]byte(content), &d); err != nil {
		return nil, errorf("InvalidDocument", "document %s is not a valid JSON Session document", name)
	}
	if !ssmdoc.ValidSessionType(d.SessionType) {
		return nil, errorf("InvalidDocument", "document %s has no valid sessionType", name)
	}
	d.raw = content
	return &d, nil
}

// sessionDocumentContent returns the content of the AWS-owned document
// name as this sandbox serves it now.
func sessionDocumentContent(name string, legacyNonInteractive bool) (string, bool) {
	if name == ssmdoc.NonInteractiveCommand && legacyNonInteractive {
		return legacyNonInteractiveDocument, true
	}
	c, ok := AWSSessionDocuments[name]
	return c, ok
}

// getDocument loads a Session document: the built-in AWS documents first,
// then moto.
func (h *Handler) getDocument(ctx context.Context, name string) (*sessionDoc, bool, error) {
	if c, ok := sessionDocumentContent(name, h.legacyNonInteractive.Load()); ok {
		d, err := parseSessionDoc(name, c)
		return d, true, err
	}
	out, err := h.opts.Documents.GetDocument(ctx, &ssm.GetDocumentInput{
		Name:           aws.String(name),
		DocumentFormat: ssmtypes.DocumentFormatJson,
	})
	if err != nil {
		var invalid *ssmtypes.InvalidDocument
		if errors.As(err, &invalid) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading document %s from moto: %w", name, err)
	}
	if out.DocumentType != ssmtypes.DocumentTypeSession {
		return nil, true, errorf("InvalidDocument", "document %s is not a Session document", name)
	}
	d, err := parseSessionDoc(name, aws.ToString(out.Content))
	return d, true, err
}

// placeholder matches {{ name }} (no ssm: parameter references).
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}`)

// resolveParameters turns StartSession Parameters into one string per
// document parameter, applying defaults and checking allowedPattern and
// allowedValues.
func resolveParameters(docName string, d *sessionDoc, given map[string][]string) (map[string]string, error) {
	vals := make(map[string]string, len(d.Parameters))
	var unknown []string
	for _, name := range sortedKeys(given) {
		if _, ok := d.Parameters[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return nil, errorf("InvalidParameters", "document %s does not support parameters: %s", docName, strings.Join(unknown, ", "))
	}
	for name, def := range d.Parameters {
		v, ok := given[name]
		var s string
		switch {
		case ok:
			s = strings.Join(v, ",")
		case len(def.Default) > 0 && string(def.Default) != "null":
			s = rawString(def.Default)
		default:
			return nil, errorf("InvalidParameters", "document %s requires parameter %q", docName, name)
		}
		if def.AllowedPattern != "" {
			re, err := regexp.Compile(def.AllowedPattern)
			if err == nil && !re.MatchString(s) {
				return nil, errorf("InvalidParameters", "parameter %q does not match its allowed pattern", name)
			}
		}
		if len(def.AllowedValues) > 0 && !anyEqual([]string{s}, def.AllowedValues) {
			return nil, errorf("InvalidParameters", "parameter %q is not one of its allowed values", name)
		}
		vals[name] = s
	}
	return vals, nil
}

// rawString renders a JSON default as the string the agent would see.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// substitute replaces {{ name }} in every string inside v.
func substitute(v any, vals map[string]string) any {
	switch t := v.(type) {
	case string:
		return placeholder.ReplaceAllStringFunc(t, func(m string) string {
			name := placeholder.FindStringSubmatch(m)[1]
			if s, ok := vals[name]; ok {
				return s
			}
			return m
		})
	case map[string]any:
		for k, e := range t {
			t[k] = substitute(e, vals)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = substitute(e, vals)
		}
		return t
	}
	return v
}

// loadPreferences returns the inputs of the account's Session Manager
// preferences (SSM-SessionManagerRunShell), read and validated with
// pkg/prefs, the one preferences model; without the document the AWS
// defaults apply (20 min idle timeout, no maximum duration).
func (h *Handler) loadPreferences(ctx context.Context) (map[string]any, error) {
	d, found, err := h.getDocument(ctx, ssmdoc.Shell)
	if err != nil || !found {
		return map[string]any{}, err
	}
	p, err := prefs.Parse([]byte(d.raw))
	if err != nil {
		return nil, errorf("InvalidDocument", "the Session Manager preferences (%s) cannot be read: %v", ssmdoc.Shell, err)
	}
	if err := prefs.Validate(p); err != nil {
		return nil, errorf("InvalidDocument", "the Session Manager preferences (%s) are not valid: %v", ssmdoc.Shell, err)
	}
	in, _ := p.Map()["inputs"].(map[string]any)
	if in == nil {
		in = map[string]any{}
	}
	return in, nil
}

// durations reads idleSessionTimeout and maxSessionDuration from merged
// inputs, with the ranges of pkg/prefs; one minute lasts minute.
func durations(inputs map[string]any, minute time.Duration) (idle, maxDur time.Duration, err error) {
	read := func(key string) (time.Duration, error) {
		f, _ := prefs.FieldFor(key)
		v, ok := inputs[key]
		if !ok || v == nil {
			return 0, nil
		}
		n, err := prefs.MinutesValue(v, f.Min, f.Max)
		if err != nil {
			return 0, errorf("InvalidDocument", "%s %v", key, err)
		}
		return time.Duration(n) * minute, nil
	}
	if idle, err = read(prefs.KeyIdleSessionTimeout); err != nil {
		return 0, 0, err
	}
	if maxDur, err = read(prefs.KeyMaxSessionDuration); err != nil {
		return 0, 0, err
	}
	return idle, maxDur, nil
}

// sessionInputs converts merged inputs to the wire struct, tolerating numbers
// where the agent expects strings.
func sessionInputs(inputs map[string]any) (wire.SessionInputs, error) {
	norm := make(map[string]any, len(inputs))
	for k, v := range inputs {
		if k == prefs.KeyIdleSessionTimeout || k == prefs.KeyMaxSessionDuration {
			switch t := v.(type) {
			case float64:
				v = strconv.FormatFloat(t, 'f', -1, 64)
			case json.Number:
				v = t.String()
			}
		}
		norm[k] = v
	}
	b, err := json.Marshal(norm)
	if err != nil {
		return wire.SessionInputs{}, errorf("InvalidDocument", "session preferences are not valid")
	}
	var si wire.SessionInputs
	if err := json.Unmarshal(b, &si); err != nil {
		return wire.SessionInputs{}, errorf("InvalidDocument", "session preferences are not valid: %s", jsonErrorText(err))
	}
	return si, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
