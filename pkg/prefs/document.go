// Package prefs is the Session Manager preferences model: the
// SSM-SessionManagerRunShell document (or any other Session document) as
// code. It parses JSON or YAML, validates the inputs Session Manager
// understands, diffs two documents and writes a document back to SSM as a
// new default version, with an optimistic check against concurrent edits.
//
// A Document keeps every key it was given: inputs ssmkit does not know and
// top-level keys (parameters, properties, …) survive a round trip, so
// `ssmkit prefs set` never drops what the console or Terraform wrote.
package prefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
	"sigs.k8s.io/yaml"
)

// Input keys of a Session Manager document that ssmkit validates. Shell
// profile keys are paths inside the shellProfile object.
const (
	KeyS3Bucket            = "s3BucketName"
	KeyS3Prefix            = "s3KeyPrefix"
	KeyS3Encryption        = "s3EncryptionEnabled"
	KeyLogGroup            = "cloudWatchLogGroupName"
	KeyLogEncryption       = "cloudWatchEncryptionEnabled"
	KeyLogStreaming        = "cloudWatchStreamingEnabled"
	KeyKMSKey              = "kmsKeyId"
	KeyRunAsEnabled        = "runAsEnabled"
	KeyRunAsDefaultUser    = "runAsDefaultUser"
	KeyIdleSessionTimeout  = "idleSessionTimeout"
	KeyMaxSessionDuration  = "maxSessionDuration"
	KeyShellProfileLinux   = "shellProfile.linux"
	KeyShellProfileWindows = "shellProfile.windows"
)

// MaxDocumentBytes is SSM's limit for a document's content (64 KiB): a
// larger document cannot be written, and Parse refuses to read one.
const MaxDocumentBytes = 64 << 10

const (
	defaultDescription      = "Document to hold regional settings for Session Manager"
	defaultSchemaVersion    = "1.0"
	inputsKey               = "inputs"
	shellProfileKey         = "shellProfile"
	shellProfilePrefix      = shellProfileKey + "."
	defaultInputsJSONString = `{
  "s3BucketName": "",
  "s3KeyPrefix": "",
  "s3EncryptionEnabled": true,
  "cloudWatchLogGroupName": "",
  "cloudWatchEncryptionEnabled": true,
  "cloudWatchStreamingEnabled": true,
  "idleSessionTimeout": "20",
  "maxSessionDuration": "",
  "kmsKeyId": "",
  "runAsEnabled": false,
  "runAsDefaultUser": "",
  "shellProfile": {"linux": "", "windows": ""}
}`
)

// Kind is how an input's value is typed.
type Kind int

// Input kinds.
const (
	// KindString is free text.
	KindString Kind = iota
	// KindBool is true or false (also accepted as the strings "true"/"false").
	KindBool
	// KindMinutes is a whole number of minutes, stored as a string; empty
	// means the service default.
	KindMinutes
)

// Field describes one input ssmkit knows.
type Field struct {
	// Key is the input's path inside "inputs" (shellProfile.linux).
	Key string
	// Kind is the value's type.
	Kind Kind
	// Min and Max bound KindMinutes values.
	Min, Max int
}

// Fields returns the inputs ssmkit validates, in display order.
func Fields() []Field {
	return []Field{
		{Key: KeyS3Bucket},
		{Key: KeyS3Prefix},
		{Key: KeyS3Encryption, Kind: KindBool},
		{Key: KeyLogGroup},
		{Key: KeyLogEncryption, Kind: KindBool},
		{Key: KeyLogStreaming, Kind: KindBool},
		{Key: KeyKMSKey},
		{Key: KeyRunAsEnabled, Kind: KindBool},
		{Key: KeyRunAsDefaultUser},
		{Key: KeyIdleSessionTimeout, Kind: KindMinutes, Min: 1, Max: 60},
		{Key: KeyMaxSessionDuration, Kind: KindMinutes, Min: 1, Max: 1440},
		{Key: KeyShellProfileLinux},
		{Key: KeyShellProfileWindows},
	}
}

// FieldFor returns the Field for key.
func FieldFor(key string) (Field, bool) {
	for _, f := range Fields() {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// ErrParse marks a document that is not a JSON or YAML object.
var ErrParse = errors.New("not a Session Manager document")

// Document is a Session Manager document as a JSON tree. The zero value is
// an empty document; use Default for the service defaults.
type Document struct {
	m map[string]any
}

// Default returns the preferences Session Manager uses when the account
// has never saved any (what the console writes on first save).
func Default() *Document {
	d := &Document{m: map[string]any{
		"schemaVersion": defaultSchemaVersion,
		"description":   defaultDescription,
		"sessionType":   ssmdoc.SessionTypeStandardStream,
	}}
	var in map[string]any
	if err := json.Unmarshal([]byte(defaultInputsJSONString), &in); err != nil {
		// A constant that does not parse is a programming error caught by
		// the tests; fall back to no inputs rather than panic.
		in = map[string]any{}
	}
	d.m[inputsKey] = in
	return d
}

// Parse reads a document from JSON or YAML. Numbers keep their text, so a
// document round-trips without turning 20 into 2e+01.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes is over SSM's %d-byte limit", ErrParse, len(data), MaxDocumentBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the content is empty", ErrParse)
	}
	js := trimmed
	if trimmed[0] != '{' {
		var err error
		if js, err = yaml.YAMLToJSON(trimmed); err != nil {
			return nil, fmt.Errorf("%w: %s", ErrParse, oneLine(err.Error()))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrParse, oneLine(err.Error()))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrParse)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the top level must be an object", ErrParse)
	}
	if in, ok := m[inputsKey]; ok && in != nil {
		if _, ok := in.(map[string]any); !ok {
			return nil, fmt.Errorf("%w: \"inputs\" must be an object", ErrParse)
		}
	}
	return &Document{m: m}, nil
}

// Clone returns a deep copy of d.
func (d *Document) Clone() *Document {
	return &Document{m: deepCopy(d.tree()).(map[string]any)}
}

func (d *Document) tree() map[string]any {
	if d == nil || d.m == nil {
		return map[string]any{}
	}
	return d.m
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = deepCopy(e)
		}
		return c
	default:
		return v
	}
}

// inputs returns the inputs object, creating it when create is set.
func (d *Document) inputs(create bool) map[string]any {
	if d.m == nil {
		if !create {
			return nil
		}
		d.m = map[string]any{}
	}
	in, _ := d.m[inputsKey].(map[string]any)
	if in == nil && create {
		in = map[string]any{}
		d.m[inputsKey] = in
	}
	return in
}

// Get returns the input at key (a path such as shellProfile.linux).
func (d *Document) Get(key string) (any, bool) {
	if d == nil {
		return nil, false
	}
	in := d.inputs(false)
	if in == nil {
		return nil, false
	}
	if sub, ok := strings.CutPrefix(key, shellProfilePrefix); ok {
		sp, _ := in[shellProfileKey].(map[string]any)
		if sp == nil {
			return nil, false
		}
		v, ok := sp[sub]
		return v, ok
	}
	v, ok := in[key]
	return v, ok
}

// String returns the input at key as text: strings as they are, booleans
// and numbers in JSON form, "" when absent.
func (d *Document) String(key string) string {
	v, ok := d.Get(key)
	if !ok || v == nil {
		return ""
	}
	switch t := v.(type) {
	case string:
		return t
	case bool:
		if t {
			return "true"
		}
		return "false"
	case json.Number:
		return t.String()
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

// Bool returns the boolean input at key; absent, empty or malformed values
// are false. Validate reports malformed ones.
func (d *Document) Bool(key string) bool {
	b, _ := parseBool(d.String(key))
	return b
}

// Set stores value at key. Booleans should be bool and minutes string, as
// the console writes them; Set stores what it is given.
func (d *Document) Set(key string, value any) {
	in := d.inputs(true)
	if sub, ok := strings.CutPrefix(key, shellProfilePrefix); ok {
		sp, _ := in[shellProfileKey].(map[string]any)
		if sp == nil {
			sp = map[string]any{}
			in[shellProfileKey] = sp
		}
		sp[sub] = value
		return
	}
	in[key] = value
}

// ResetInputs sets every known input to its default, leaving other keys
// (unknown inputs, parameters, properties) as they are.
func (d *Document) ResetInputs() {
	def := Default()
	for _, f := range Fields() {
		v, _ := def.Get(f.Key)
		d.Set(f.Key, v)
	}
	if d.m["schemaVersion"] == nil {
		d.m["schemaVersion"] = defaultSchemaVersion
	}
	if d.m["sessionType"] == nil {
		d.m["sessionType"] = ssmdoc.SessionTypeStandardStream
	}
}

// Normalize fills the top-level keys SSM requires of a Session document
// when they are missing.
func (d *Document) Normalize() {
	m := d.tree()
	d.m = m
	if _, ok := m["schemaVersion"]; !ok {
		m["schemaVersion"] = defaultSchemaVersion
	}
	if _, ok := m["sessionType"]; !ok {
		m["sessionType"] = ssmdoc.SessionTypeStandardStream
	}
}

// JSON renders d as indented JSON with sorted keys: the same document
// always renders to the same bytes.
func (d *Document) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d.tree()); err != nil {
		return nil, fmt.Errorf("encoding the document: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Map returns the document tree for JSON output. Callers must not modify it.
func (d *Document) Map() map[string]any { return d.tree() }

// Equal reports whether two documents have the same content, ignoring key
// order, formatting and the text form of numbers.
func (d *Document) Equal(o *Document) bool {
	return reflect.DeepEqual(flatten(d.tree()), flatten(o.tree()))
}

// Change is one difference between two documents.
type Change struct {
	// Path is the dotted key, e.g. inputs.idleSessionTimeout.
	Path string `json:"path"`
	// Op is "+" (added), "-" (removed) or "~" (changed).
	Op string `json:"op"`
	// Old and New are the values in JSON form ("" when absent).
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Diff lists what changes from old to new, sorted by path. Objects are
// compared key by key; arrays and scalars as whole values.
func Diff(old, new *Document) []Change {
	a, b := flatten(old.tree()), flatten(new.tree())
	var out []Change
	for p, av := range a {
		bv, ok := b[p]
		switch {
		case !ok:
			out = append(out, Change{Path: p, Op: "-", Old: av})
		case av != bv:
			out = append(out, Change{Path: p, Op: "~", Old: av, New: bv})
		}
	}
	for p, bv := range b {
		if _, ok := a[p]; !ok {
			out = append(out, Change{Path: p, Op: "+", New: bv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flatten maps every leaf's dotted path to its canonical JSON. Empty
// objects are leaves, so that adding one shows in a diff.
func flatten(m map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if o, ok := v.(map[string]any); ok && len(o) > 0 {
			for k, e := range o {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
			return
		}
		out[prefix] = canonical(v)
	}
	for k, v := range m {
		walk(k, v)
	}
	return out
}

// canonical renders a leaf so that 20, 20.0 and 2e1 compare equal.
func canonical(v any) string {
	if n, ok := v.(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			b, _ := json.Marshal(f)
			return string(b)
		}
		return n.String()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(normalizeNumbers(v)); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimRight(buf.String(), "\n")
}

func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = normalizeNumbers(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = normalizeNumbers(e)
		}
		return c
	}
	return v
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
