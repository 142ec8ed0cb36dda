// Package iampolicy evaluates IAM policy documents well enough to answer
// ssmkit's questions without calling AWS: "does this role grant what
// AmazonSSMManagedInstanceCore grants?", "may this role use that key?",
// "does this endpoint policy let the instance's role open a control
// channel?", "may this user start a session on that instance?". The doctor
// and the sandbox (which decides whether an emulated agent may register)
// share it, so both read a policy the same way.
//
// It implements the parts of the IAM evaluation logic that decide those
// answers:
//
//   - Allow and Deny statements, "an explicit Deny wins";
//   - Action and NotAction (case-insensitively, as IAM does);
//   - Resource and NotResource (case-sensitively), with policy variables
//     such as ${aws:userid} taken from the request context; a Request
//     without a Resource evaluates actions only;
//   - Principal and NotPrincipal for resource-based policies (trust, key
//     and endpoint policies): "*", account IDs and root ARNs, role ARNs
//     (which also match the role's sessions), services;
//   - Condition blocks with the String*, Arn*, Bool and Null operators,
//     their IfExists forms and the ForAnyValue / ForAllValues qualifiers,
//     over the keys the Request's Context supplies.
//
// What it cannot decide (an unknown operator, a key the context does not
// supply) makes the answer Conditional rather than a guess. Permissions
// boundaries, SCPs and session policies are out of scope; callers say so.
package iampolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Effect is a statement's effect.
type Effect string

// The two effects IAM knows.
const (
	// Allow grants the matched actions.
	Allow Effect = "Allow"
	// Deny refuses the matched actions and wins over any Allow.
	Deny Effect = "Deny"
)

// ErrInvalidDocument is wrapped by Parse's errors.
var ErrInvalidDocument = errors.New("invalid policy document")

// Statement is one parsed policy statement.
type Statement struct {
	// Sid is the statement id, if any.
	Sid string
	// Effect is Allow or Deny.
	Effect Effect
	// Action and NotAction are the action patterns (exactly one is set).
	Action, NotAction []string
	// Resource and NotResource are the resource patterns. Both empty means
	// the statement names no resource (trust and key policies may omit
	// it); it then matches every resource.
	Resource, NotResource []string
	// Principal and NotPrincipal map a principal type ("AWS", "Service",
	// "Federated", "CanonicalUser", or "*" for the bare "*") to values.
	// Both nil in identity policies.
	Principal, NotPrincipal map[string][]string
	// Conditions are the Condition block's tests, all of which must hold.
	Conditions []Condition
	// Raw is the statement as written, for fixes that rewrite a document.
	Raw json.RawMessage
}

// Condition is one operator/key test of a Condition block.
type Condition struct {
	// Operator is as written, e.g. "StringLike", "ForAnyValue:StringEquals",
	// "BoolIfExists".
	Operator string
	// Key is the condition key, e.g. "ssm:resourceTag/Env".
	Key string
	// Values are the values to compare with.
	Values []string
}

// Document is a parsed policy document.
type Document struct {
	// Name says where the document came from (policy ARN, inline policy
	// name); it appears in Result.By.
	Name string
	// Statements are the document's statements in order.
	Statements []Statement
}

// Parse parses a policy document. It accepts the URL-encoded form IAM
// returns from GetRolePolicy, GetPolicyVersion and GetRole, and the single
// value / list forms of every field. name labels the document in results.
func Parse(name, doc string) (Document, error) {
	d := Document{Name: name}
	text := strings.TrimSpace(doc)
	if !strings.HasPrefix(text, "{") {
		// IAM returns documents URL-encoded (RFC 3986); plain JSON always
		// starts with a brace.
		un, err := url.QueryUnescape(text)
		if err != nil {
			return d, fmt.Errorf("%w %s: decoding: %w", ErrInvalidDocument, name, err)
		}
		text = strings.TrimSpace(un)
	}
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return d, fmt.Errorf("%w %s: %w", ErrInvalidDocument, name, err)
	}
	var stmts []json.RawMessage
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		stmts = []json.RawMessage{raw.Statement}
	} else if len(raw.Statement) > 0 && string(raw.Statement) != "null" {
		if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
			return d, fmt.Errorf("%w %s: Statement: %w", ErrInvalidDocument, name, err)
		}
	}
	for i, s := range stmts {
		st, err := parseStatement(s)
		if err != nil {
			return d, fmt.Errorf("%w %s: statement %d: %w", ErrInvalidDocument, name, i, err)
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

func parseStatement(b json.RawMessage) (Statement, error) {
	var raw struct {
		Sid          string
		Effect       string
		Action       stringList
		NotAction    stringList
		Resource     stringList
		NotResource  stringList
		Principal    json.RawMessage
		NotPrincipal json.RawMessage
		Condition    map[string]map[string]condValues
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Statement{}, err
	}
	st := Statement{Sid: raw.Sid, Action: raw.Action, NotAction: raw.NotAction,
		Resource: raw.Resource, NotResource: raw.NotResource, Raw: append(json.RawMessage(nil), b...)}
	switch strings.ToLower(raw.Effect) {
	case "allow":
		st.Effect = Allow
	case "deny":
		st.Effect = Deny
	default:
		return st, fmt.Errorf("effect %q is neither Allow nor Deny", raw.Effect)
	}
	if len(st.Action) == 0 && len(st.NotAction) == 0 {
		return st, errors.New("neither Action nor NotAction")
	}
	for op, keys := range raw.Condition {
		for k, vals := range keys {
			st.Conditions = append(st.Conditions, Condition{Operator: op, Key: k, Values: vals})
		}
	}
	// Map order is random: keep evaluation and evidence deterministic.
	sort.Slice(st.Conditions, func(i, j int) bool {
		a, c := st.Conditions[i], st.Conditions[j]
		return a.Operator+"\x00"+a.Key < c.Operator+"\x00"+c.Key
	})
	var err error
	if st.Principal, err = parsePrincipal(raw.Principal); err != nil {
		return st, fmt.Errorf("the Principal element: %w", err)
	}
	if st.NotPrincipal, err = parsePrincipal(raw.NotPrincipal); err != nil {
		return st, fmt.Errorf("the NotPrincipal element: %w", err)
	}
	return st, nil
}

func parsePrincipal(b json.RawMessage) (map[string][]string, error) {
	if p := strings.TrimSpace(string(b)); p == "" || p == "null" {
		return nil, nil
	}
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		return map[string][]string{"*": {star}}, nil
	}
	var m map[string]stringList
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out, nil
}

// stringList decodes a JSON string or array of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}

// condValues decodes a condition's values: a string, bool or number, or a
// list of them (IAM accepts "true" and true alike).
type condValues []string

func (s *condValues) UnmarshalJSON(b []byte) error {
	var one any
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	list, ok := one.([]any)
	if !ok {
		list = []any{one}
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		switch x := x.(type) {
		case string:
			out = append(out, x)
		case bool, float64:
			out = append(out, fmt.Sprint(x))
		default:
			return errors.New("want a string, bool or number, or a list of them")
		}
	}
	*s = out
	return nil
}

// Decision is the outcome of evaluating a request.
type Decision int

// The decisions, from worst to best for the caller.
const (
	// ImplicitDeny: no statement allows the request.
	ImplicitDeny Decision = iota
	// ExplicitDeny: an unconditional Deny statement matches.
	ExplicitDeny
	// Conditional: the answer depends on a Condition the context cannot
	// decide (an Allow with such a condition, or an Allow shadowed by a
	// Deny with one).
	Conditional
	// Allowed: an Allow matches and no Deny does.
	Allowed
)

// String names the decision as the doctor prints it.
func (d Decision) String() string {
	switch d {
	case ExplicitDeny:
		return "explicitly denied"
	case Conditional:
		return "conditional"
	case Allowed:
		return "allowed"
	}
	return "not allowed"
}

// Request is what is asked of a set of policies.
type Request struct {
	// Action is the API action, e.g. "ssm:StartSession".
	Action string
	// Resource is the ARN acted on. Empty evaluates actions only:
	// Resource and NotResource are not looked at.
	Resource string
	// Principal is who asks, as "AWS:<arn>" or "Service:<name>". Set it
	// for resource-based policies (trust, key, endpoint policies); empty
	// leaves Principal and NotPrincipal unevaluated (identity policies).
	Principal string
	// Context holds the condition keys' values (keys are compared
	// case-insensitively). It also resolves policy variables in resources
	// (${aws:userid}). A key it lacks makes a test on it undecidable,
	// unless AbsentPrefixes covers it.
	Context map[string][]string
	// AbsentPrefixes are key prefixes the Context lists completely
	// ("ssm:resourceTag/" when it holds every tag of the resource): a key
	// with such a prefix that Context lacks is known to be absent.
	AbsentPrefixes []string
}

// Result is a decision with the statement that decided it.
type Result struct {
	Decision Decision
	// By names the deciding document and statement ("policy#Sid" or
	// "policy#2"), empty for ImplicitDeny.
	By string
	// Document is the deciding document's name, Index the statement's
	// position in it (-1 for ImplicitDeny), Sid its id.
	Document string
	Index    int
	Sid      string
}

func resultOf(d Decision, doc Document, i int) Result {
	st := doc.Statements[i]
	by := doc.Name + "#" + st.Sid
	if st.Sid == "" {
		by = fmt.Sprintf("%s#%d", doc.Name, i)
	}
	return Result{Decision: d, By: by, Document: doc.Name, Index: i, Sid: st.Sid}
}

// Evaluate decides whether docs together allow req: an unconditional Deny
// wins, then an Allow, unless a Deny depends on an undecidable condition.
func Evaluate(docs []Document, req Request) Result {
	var allow, condAllow, condDeny *Result
	ctx := req.context()
	for _, d := range docs {
		for i, st := range d.Statements {
			if !st.matchesAction(req.Action) || !st.matchesPrincipal(req.Principal) {
				continue
			}
			if req.Resource != "" && !st.matchesResource(req.Resource, ctx) {
				continue
			}
			cond := st.conditionsHold(ctx)
			if cond == condFalse {
				continue
			}
			switch {
			case st.Effect == Deny && cond == condTrue:
				return resultOf(ExplicitDeny, d, i)
			case st.Effect == Deny:
				if condDeny == nil {
					r := resultOf(Conditional, d, i)
					condDeny = &r
				}
			case cond == condTrue:
				if allow == nil {
					r := resultOf(Allowed, d, i)
					allow = &r
				}
			default:
				if condAllow == nil {
					r := resultOf(Conditional, d, i)
					condAllow = &r
				}
			}
		}
	}
	switch {
	case allow != nil && condDeny != nil:
		return *condDeny
	case allow != nil:
		return *allow
	case condAllow != nil:
		return *condAllow
	}
	return Result{Decision: ImplicitDeny, Index: -1}
}

// Denies returns every statement of docs that denies req outright (an
// unconditional, matching Deny), in order. Fixes name them all.
func Denies(docs []Document, req Request) []Result {
	var out []Result
	ctx := req.context()
	for _, d := range docs {
		for i, st := range d.Statements {
			if st.Effect != Deny || !st.matchesAction(req.Action) || !st.matchesPrincipal(req.Principal) {
				continue
			}
			if req.Resource != "" && !st.matchesResource(req.Resource, ctx) {
				continue
			}
			if st.conditionsHold(ctx) == condTrue {
				out = append(out, resultOf(ExplicitDeny, d, i))
			}
		}
	}
	return out
}

// reqContext is a request's context with lower-case keys, and the
// prefixes under which missing keys are absent.
type reqContext struct {
	m      map[string][]string
	absent []string
}

func (r Request) context() reqContext {
	m := make(map[string][]string, len(r.Context))
	for k, v := range r.Context {
		m[strings.ToLower(k)] = v
	}
	var absent []string
	for _, p := range r.AbsentPrefixes {
		absent = append(absent, strings.ToLower(p))
	}
	return reqContext{m: m, absent: absent}
}

// lookup returns a key's values and whether they are known (an absent key
// under AbsentPrefixes is known, with no values).
func (c reqContext) lookup(key string) ([]string, bool) {
	k := strings.ToLower(key)
	if v, ok := c.m[k]; ok {
		return v, true
	}
	for _, p := range c.absent {
		if strings.HasPrefix(k, p) {
			return nil, true
		}
	}
	return nil, false
}

func (st Statement) matchesAction(action string) bool {
	if len(st.NotAction) > 0 {
		return !anyMatch(st.NotAction, action, true)
	}
	return anyMatch(st.Action, action, true)
}

func (st Statement) matchesResource(resource string, ctx reqContext) bool {
	match := func(patterns []string) bool {
		for _, p := range patterns {
			if q, ok := substitute(p, ctx); ok && matchResource(q, resource) {
				return true
			}
		}
		return false
	}
	switch {
	case len(st.NotResource) > 0:
		return !match(st.NotResource)
	case len(st.Resource) > 0:
		return match(st.Resource)
	}
	return true
}

// substitute replaces policy variables (${aws:userid}, ${key, 'default'})
// with their values from ctx, and the escapes ${*} ${?} ${$} with the
// characters, which then match literally. ok is false when a variable has
// no value and no default: IAM then lets the element match nothing.
func substitute(p string, ctx reqContext) (string, bool) {
	if !strings.Contains(p, "${") {
		return p, true
	}
	var b strings.Builder
	for {
		i := strings.Index(p, "${")
		if i < 0 {
			b.WriteString(p)
			return b.String(), true
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String(), true
		}
		b.WriteString(p[:i])
		name := strings.TrimSpace(p[i+2 : i+j])
		p = p[i+j+1:]
		if r, ok := escapes[name]; ok {
			b.WriteRune(r)
			continue
		}
		def, hasDef := "", false
		if k, d, ok := strings.Cut(name, ","); ok {
			name = strings.TrimSpace(k)
			d = strings.TrimSpace(d)
			if len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'' {
				def, hasDef = d[1:len(d)-1], true
			}
		}
		if v, _ := ctx.lookup(name); len(v) == 1 {
			b.WriteString(v[0])
		} else if hasDef {
			b.WriteString(def)
		} else {
			return "", false
		}
	}
}

// escapes are what ${*}, ${?} and ${$} become after substitution: '$' is
// itself; the wildcards become control bytes that matchResource
// compares with a literal * or ? in the resource.
var escapes = map[string]rune{"*": '\x01', "?": '\x02', "$": '$'}

// matchResource matches a substituted resource pattern, where escaped
// wildcards must meet the literal characters.
func matchResource(pattern, resource string) bool {
	if strings.ContainsAny(pattern, "\x01\x02") {
		resource = strings.NewReplacer("*", "\x01", "?", "\x02").Replace(resource)
	}
	return Match(pattern, resource, false)
}

// matchesPrincipal decides the Principal / NotPrincipal elements for
// p ("AWS:arn…", "Service:name"). An empty p (identity policies) and a
// statement naming neither (an endpoint policy may omit it) match.
func (st Statement) matchesPrincipal(p string) bool {
	if p == "" {
		return true
	}
	switch {
	case st.Principal != nil:
		return principalIn(st.Principal, p)
	case st.NotPrincipal != nil:
		return !principalIn(st.NotPrincipal, p)
	}
	return true
}

func principalIn(m map[string][]string, p string) bool {
	typ, val, ok := strings.Cut(p, ":")
	if !ok {
		return false
	}
	for k, vals := range m {
		for _, v := range vals {
			if k == "*" || v == "*" && strings.EqualFold(k, "AWS") {
				return true
			}
			if !strings.EqualFold(k, typ) {
				continue
			}
			switch {
			case strings.EqualFold(typ, "AWS"):
				if awsPrincipalMatches(v, val) {
					return true
				}
			case strings.EqualFold(v, val):
				return true
			}
		}
	}
	return false
}

// awsPrincipalMatches reports whether a policy's AWS principal value names
// the caller: the same ARN, the caller's account (an ID or a root ARN), or
// the role whose session the caller is.
func awsPrincipalMatches(v, caller string) bool {
	if v == caller {
		return true
	}
	c, err := arn.Parse(caller)
	if err != nil {
		return false
	}
	if !strings.HasPrefix(v, "arn:") {
		return v == c.AccountID
	}
	pv, err := arn.Parse(v)
	if err != nil || pv.AccountID != c.AccountID || pv.Partition != c.Partition {
		return false
	}
	if pv.Service == "iam" && pv.Resource == "root" {
		return true
	}
	// arn:aws:iam::1:role/path/R names arn:aws:sts::1:assumed-role/R/session.
	if pv.Service == "iam" && c.Service == "sts" && strings.HasPrefix(pv.Resource, "role/") && strings.HasPrefix(c.Resource, "assumed-role/") {
		role := pv.Resource[strings.LastIndex(pv.Resource, "/")+1:]
		sess := strings.SplitN(strings.TrimPrefix(c.Resource, "assumed-role/"), "/", 2)
		return sess[0] == role
	}
	return false
}

type condResult int

const (
	condTrue condResult = iota
	condFalse
	condUnknown
)

// conditionsHold evaluates every condition of the statement against ctx:
// false as soon as one fails, unknown if one cannot be decided.
func (st Statement) conditionsHold(ctx reqContext) condResult {
	res := condTrue
	for _, c := range st.Conditions {
		switch c.eval(ctx) {
		case condFalse:
			return condFalse
		case condUnknown:
			res = condUnknown
		}
	}
	return res
}

func (c Condition) eval(ctx reqContext) condResult {
	op := c.Operator
	qualifier := ""
	if q, rest, ok := strings.Cut(op, ":"); ok {
		qualifier, op = strings.ToLower(q), rest
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	vals, known := ctx.lookup(c.Key)
	if strings.EqualFold(op, "Null") {
		if !known {
			return condUnknown
		}
		want := len(c.Values) == 1 && strings.EqualFold(c.Values[0], "true")
		return boolResult((len(vals) == 0) == want)
	}
	if !known {
		return condUnknown
	}
	if len(vals) == 0 {
		// The key is known to be absent.
		if ifExists || qualifier == "forallvalues" {
			return condTrue
		}
		return condFalse
	}
	cmp := comparator(op)
	if cmp == nil {
		return condUnknown
	}
	negated := strings.Contains(op, "Not")
	one := func(v string) bool {
		for _, want := range c.Values {
			w, ok := substitute(want, ctx)
			if ok && cmp(w, v) {
				return true
			}
		}
		return false
	}
	// Negated operators hold when no value matches (IAM: a value matches
	// none of the listed ones).
	switch qualifier {
	case "forallvalues":
		for _, v := range vals {
			if one(v) == negated {
				return condFalse
			}
		}
		return condTrue
	case "foranyvalue":
		for _, v := range vals {
			if one(v) != negated {
				return condTrue
			}
		}
		return condFalse
	}
	if len(vals) != 1 {
		// A multivalued key needs a set qualifier to be decided the way
		// IAM does.
		return condUnknown
	}
	return boolResult(one(vals[0]) != negated)
}

func boolResult(b bool) condResult {
	if b {
		return condTrue
	}
	return condFalse
}

// comparator returns how op compares a policy value with a request value
// (both positive: negated operators are decided by the caller), or nil for
// operators this package does not decide.
func comparator(op string) func(want, got string) bool {
	switch op {
	case "StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals":
		if strings.HasPrefix(op, "Arn") {
			return func(w, g string) bool { return Match(w, g, false) }
		}
		return func(w, g string) bool { return w == g }
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
		return strings.EqualFold
	case "StringLike", "StringNotLike", "ArnLike", "ArnNotLike":
		return func(w, g string) bool { return Match(w, g, false) }
	case "Bool":
		return strings.EqualFold
	}
	return nil
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if Match(p, s, fold) {
			return true
		}
	}
	return false
}

// Match reports whether s matches the IAM pattern p, where * matches any
// run of characters and ? any single character. With fold the comparison
// ignores case. It runs in O(len(p)·len(s)) at worst, whatever the input.
func Match(p, s string, fold bool) bool {
	if fold {
		p, s = strings.ToLower(p), strings.ToLower(s)
	}
	// The classic greedy matcher with one backtrack point: the last star.
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Actions lists every action an Allow statement of d names, without
// wildcard expansion, in order and without duplicates. The doctor reads
// the action list of AmazonSSMManagedInstanceCore from the policy itself.
func Actions(d Document) []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range d.Statements {
		if st.Effect != Allow {
			continue
		}
		for _, a := range st.Action {
			if k := strings.ToLower(a); !seen[k] {
				seen[k] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// Without returns the document's JSON with the statements at the given
// indexes removed, in the shape IAM accepts back (put-role-policy,
// create-policy-version), and how many statements remain. Fixes use it to
// remove a denying statement and keep the rest of a policy.
func Without(d Document, drop ...int) (string, int) {
	skip := map[int]bool{}
	for _, i := range drop {
		skip[i] = true
	}
	stmts := []json.RawMessage{}
	for i, st := range d.Statements {
		if !skip[i] {
			stmts = append(stmts, compact(st.Raw))
		}
	}
	out, _ := json.Marshal(struct {
		Version   string
		Statement []json.RawMessage
	}{"2012-10-17", stmts})
	return string(out), len(stmts)
}

// With returns the document's JSON with extra statements (anything that
// marshals to a statement object) appended, in the shape IAM and KMS
// accept back (put-key-policy). Fixes use it to grant a principal access
// and keep the rest of a policy.
func With(d Document, extra ...any) string {
	stmts := []json.RawMessage{}
	for _, st := range d.Statements {
		stmts = append(stmts, compact(st.Raw))
	}
	for _, e := range extra {
		b, err := json.Marshal(e)
		if err == nil {
			stmts = append(stmts, compact(b))
		}
	}
	out, _ := json.Marshal(struct {
		Version   string
		Statement []json.RawMessage
	}{"2012-10-17", stmts})
	return string(out)
}

func compact(b json.RawMessage) json.RawMessage {
	var buf strings.Builder
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b
	}
	return json.RawMessage(strings.TrimSpace(buf.String()))
}
