// Package policy evaluates IAM policy documents well enough to answer the
// doctor's questions ("does this role grant what AmazonSSMManagedInstanceCore
// grants?", "may this key be used by that role?") without calling AWS.
//
// It implements the parts of the IAM evaluation logic that decide those
// answers: Allow and Deny statements, Action and NotAction, Resource and
// NotResource with the * and ? wildcards (actions case-insensitively,
// resources case-sensitively, as IAM does), and "an explicit Deny wins".
// Conditions are not evaluated: a statement with a Condition block makes the
// answer Conditional rather than a guess. Permissions boundaries, SCPs and
// session policies are out of scope; the doctor says so in its evidence.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
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
	// the statement names no resource (trust and key policies may omit it
	// in practice); it then matches every resource.
	Resource, NotResource []string
	// Principal is the statement's principal as parsed: "*" or a map of
	// principal type to values. Nil in identity policies.
	Principal map[string][]string
	// Conditional is true when the statement has a Condition block.
	Conditional bool
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
	if strings.HasPrefix(text, "%") {
		if un, err := url.QueryUnescape(text); err == nil {
			text = un
		}
	}
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return d, fmt.Errorf("%w %s: %v", ErrInvalidDocument, name, err)
	}
	var stmts []json.RawMessage
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		stmts = []json.RawMessage{raw.Statement}
	} else if len(raw.Statement) > 0 {
		if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
			return d, fmt.Errorf("%w %s: Statement: %v", ErrInvalidDocument, name, err)
		}
	}
	for i, s := range stmts {
		st, err := parseStatement(s)
		if err != nil {
			return d, fmt.Errorf("%w %s: statement %d: %v", ErrInvalidDocument, name, i, err)
		}
		d.Statements = append(d.Statements, st)
	}
	return d, nil
}

func parseStatement(b json.RawMessage) (Statement, error) {
	var raw struct {
		Sid         string
		Effect      string
		Action      stringList
		NotAction   stringList
		Resource    stringList
		NotResource stringList
		Principal   json.RawMessage
		Condition   json.RawMessage
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Statement{}, err
	}
	st := Statement{Sid: raw.Sid, Action: raw.Action, NotAction: raw.NotAction,
		Resource: raw.Resource, NotResource: raw.NotResource}
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
	if c := strings.TrimSpace(string(raw.Condition)); c != "" && c != "null" && c != "{}" {
		st.Conditional = true
	}
	if p := strings.TrimSpace(string(raw.Principal)); p != "" && p != "null" {
		pr, err := parsePrincipal(raw.Principal)
		if err != nil {
			return st, err
		}
		st.Principal = pr
	}
	return st, nil
}

func parsePrincipal(b json.RawMessage) (map[string][]string, error) {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		return map[string][]string{"*": {star}}, nil
	}
	var m map[string]stringList
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("principal: %v", err)
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
		return fmt.Errorf("want a string or a list of strings: %v", err)
	}
	*s = many
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
	// Conditional: the answer depends on a Condition block (an Allow with a
	// condition, or an Allow shadowed by a conditional Deny).
	Conditional
	// Allowed: an unconditional Allow matches and no Deny does.
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

// Result is a decision with the statement that decided it.
type Result struct {
	Decision Decision
	// By names the deciding document and statement ("policy#Sid" or
	// "policy#2"), empty for ImplicitDeny.
	By string
}

// Evaluate decides whether docs together allow action on resource.
func Evaluate(docs []Document, action, resource string) Result {
	var allow, condAllow, condDeny Result
	for _, d := range docs {
		for i, st := range d.Statements {
			if !st.matchesAction(action) || !st.matchesResource(resource) {
				continue
			}
			by := d.Name + "#" + st.Sid
			if st.Sid == "" {
				by = fmt.Sprintf("%s#%d", d.Name, i)
			}
			switch {
			case st.Effect == Deny && !st.Conditional:
				return Result{Decision: ExplicitDeny, By: by}
			case st.Effect == Deny:
				if condDeny.By == "" {
					condDeny = Result{Decision: Conditional, By: by}
				}
			case !st.Conditional:
				if allow.By == "" {
					allow = Result{Decision: Allowed, By: by}
				}
			default:
				if condAllow.By == "" {
					condAllow = Result{Decision: Conditional, By: by}
				}
			}
		}
	}
	switch {
	case allow.By != "" && condDeny.By != "":
		return condDeny
	case allow.By != "":
		return allow
	case condAllow.By != "":
		return condAllow
	}
	return Result{Decision: ImplicitDeny}
}

func (st Statement) matchesAction(action string) bool {
	if len(st.NotAction) > 0 {
		return !anyMatch(st.NotAction, action, true)
	}
	return anyMatch(st.Action, action, true)
}

func (st Statement) matchesResource(resource string) bool {
	switch {
	case len(st.NotResource) > 0:
		return !anyMatch(st.NotResource, resource, false)
	case len(st.Resource) > 0:
		return anyMatch(st.Resource, resource, false)
	}
	return true
}

// AllowsPrincipal reports whether the statement's Principal names p, which
// is "Service:ec2.amazonaws.com" or "AWS:arn:…". A principal of "*" (or
// {"AWS":"*"}) matches everything; an account root ARN or bare account id
// matches every principal ARN of that account.
func (st Statement) AllowsPrincipal(p string) bool {
	typ, val, ok := strings.Cut(p, ":")
	if !ok {
		return false
	}
	for k, vals := range st.Principal {
		for _, v := range vals {
			if k == "*" || v == "*" && strings.EqualFold(k, "AWS") {
				return true
			}
			if !strings.EqualFold(k, typ) {
				continue
			}
			if strings.EqualFold(typ, "Service") && strings.EqualFold(v, val) {
				return true
			}
			if strings.EqualFold(typ, "AWS") && (v == val || sameAccountRoot(v, val)) {
				return true
			}
		}
	}
	return false
}

// sameAccountRoot reports whether root (an account id or
// arn:…:iam::ACCOUNT:root) names the account of arn.
func sameAccountRoot(root, arn string) bool {
	acct := root
	if strings.HasPrefix(root, "arn:") {
		if !strings.HasSuffix(root, ":root") {
			return false
		}
		parts := strings.Split(root, ":")
		if len(parts) != 6 {
			return false
		}
		acct = parts[4]
	}
	parts := strings.Split(arn, ":")
	return len(parts) >= 5 && acct != "" && parts[4] == acct
}

// TrustedBy reports whether a trust (or resource) policy allows principal p
// to perform action through an unconditional or conditional Allow.
func TrustedBy(d Document, p, action string) Decision {
	var best Decision = ImplicitDeny
	for _, st := range d.Statements {
		if !st.matchesAction(action) || !st.AllowsPrincipal(p) {
			continue
		}
		if st.Effect == Deny && !st.Conditional {
			return ExplicitDeny
		}
		if st.Effect == Allow {
			if !st.Conditional {
				best = Allowed
			} else if best == ImplicitDeny {
				best = Conditional
			}
		}
	}
	return best
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
// wildcard expansion, in order and without duplicates. The doctor uses it to
// read the action list of AmazonSSMManagedInstanceCore from the managed
// policy itself.
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
