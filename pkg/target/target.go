// Package target is where ssmkit learns which managed node a user means. It
// classifies what was typed (an instance ID, a hybrid managed-node ID, an
// ARN, a private IP address or DNS name, a tag filter, a name or a name
// pattern) and resolves it with EC2 and SSM: paginated listings, batched
// lookups, and one clear error for no match or several.
//
// Every command that takes a target (start, exec, forward, ssh, cp, doctor)
// and every listing that sorts IDs by kind (ls) goes through this package.
package target

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Kind says what a target string names.
type Kind int

// The kinds of target, in the order Parse tries them.
const (
	// KindInstanceID is an EC2 instance ID: i-0123456789abcdef0.
	KindInstanceID Kind = iota + 1
	// KindManagedNodeID is a hybrid (on-premises) managed node ID: mi-….
	KindManagedNodeID
	// KindARN is an instance or managed-instance ARN; Spec.ID holds the ID.
	KindARN
	// KindIP is a private IPv4 or IPv6 address.
	KindIP
	// KindDNSName is an EC2 private DNS name (ip-10-0-1-5.ec2.internal).
	KindDNSName
	// KindTag is tag:Key=Value.
	KindTag
	// KindPattern is a name with the wildcards * or ?.
	KindPattern
	// KindName is a Name tag or a hybrid node's name or computer name.
	KindName
)

// String names the kind as error messages do.
func (k Kind) String() string {
	switch k {
	case KindInstanceID:
		return "instance ID"
	case KindManagedNodeID:
		return "managed node ID"
	case KindARN:
		return "ARN"
	case KindIP:
		return "IP address"
	case KindDNSName:
		return "private DNS name"
	case KindTag:
		return "tag"
	case KindPattern:
		return "name pattern"
	case KindName:
		return "name"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Spec is a classified target string.
type Spec struct {
	// Input is the string as typed.
	Input string
	Kind  Kind
	// ID is the node ID of KindInstanceID, KindManagedNodeID and KindARN.
	ID string
	// Addr is the address of KindIP.
	Addr netip.Addr
	// Name is the name, pattern or DNS name of KindName, KindPattern and
	// KindDNSName.
	Name string
	// TagKey and TagValue are the filter of KindTag; TagValue may hold
	// wildcards (see Wildcard).
	TagKey, TagValue string
}

// Wildcard reports whether the spec selects by pattern: a name pattern, or
// a tag value with * or ?. A pattern's single match is only used when the
// caller asks for it (ResolveOptions.PickOne).
func (s Spec) Wildcard() bool {
	return s.Kind == KindPattern || (s.Kind == KindTag && hasWildcard(s.TagValue))
}

// Errors of Parse and Resolve. Match them with errors.Is.
var (
	// ErrInvalid is a target string that cannot name a node (empty, a
	// malformed tag filter, an ARN of another resource). A usage error.
	ErrInvalid = errors.New("invalid target")
	// ErrNotFound means no node matched.
	ErrNotFound = errors.New("no matching node")
	// ErrAmbiguous means several nodes matched, or a pattern matched one
	// node without ResolveOptions.PickOne. A usage error: the user must
	// say which node.
	ErrAmbiguous = errors.New("ambiguous target")
)

// targetError is an error of one of the kinds above whose message stands
// alone.
type targetError struct {
	kind error
	msg  string
}

func (e *targetError) Error() string { return e.msg }
func (e *targetError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &targetError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ID patterns: EC2 uses 8 or 17 hex digits; managed nodes 17 (the sandbox
// and older fleets may have other lengths in between).
var (
	instanceIDRE    = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	managedNodeIDRE = regexp.MustCompile(`^mi-[0-9a-f]{8,17}$`)
	idInTextRE      = regexp.MustCompile(`\bm?i-[0-9a-f]{8,17}\b`)
)

// IsInstanceID reports whether s is an EC2 instance ID (i-…).
func IsInstanceID(s string) bool { return instanceIDRE.MatchString(s) }

// IsManagedNodeID reports whether s is a hybrid managed node ID (mi-…).
func IsManagedNodeID(s string) bool { return managedNodeIDRE.MatchString(s) }

// IsNodeID reports whether s is an instance or managed node ID, the form
// StartSession takes.
func IsNodeID(s string) bool { return IsInstanceID(s) || IsManagedNodeID(s) }

// IDsIn returns the instance and managed node IDs that occur in text, such
// as an InvalidInstanceID.NotFound message, in order.
func IDsIn(text string) []string { return idInTextRE.FindAllString(text, -1) }

// Parse classifies s. It makes no API call.
func Parse(s string) (Spec, error) {
	sp := Spec{Input: s}
	switch {
	case strings.TrimSpace(s) == "":
		return sp, errorf(ErrInvalid, "the target is empty")
	case IsInstanceID(s):
		sp.Kind, sp.ID = KindInstanceID, s
	case IsManagedNodeID(s):
		sp.Kind, sp.ID = KindManagedNodeID, s
	case strings.HasPrefix(s, "arn:"):
		id, err := idFromARN(s)
		if err != nil {
			return sp, err
		}
		sp.Kind, sp.ID = KindARN, id
	case strings.HasPrefix(s, "tag:"):
		k, v, ok := strings.Cut(strings.TrimPrefix(s, "tag:"), "=")
		if !ok || k == "" || v == "" {
			return sp, errorf(ErrInvalid, "%q is not tag:KEY=VALUE", s)
		}
		sp.Kind, sp.TagKey, sp.TagValue = KindTag, k, v
	case hasWildcard(s):
		sp.Kind, sp.Name = KindPattern, s
	default:
		if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
			sp.Kind, sp.Addr = KindIP, a.Unmap()
			return sp, nil
		}
		if isPrivateDNSName(s) {
			sp.Kind, sp.Name = KindDNSName, strings.ToLower(s)
			// Resource-name hostnames carry the instance ID itself.
			if first, _, _ := strings.Cut(sp.Name, "."); IsInstanceID(first) {
				sp.Kind, sp.ID, sp.Name = KindInstanceID, first, ""
			}
			return sp, nil
		}
		sp.Kind, sp.Name = KindName, s
	}
	return sp, nil
}

// idFromARN returns the node ID in an EC2 instance ARN
// (arn:aws:ec2:region:account:instance/i-…) or an SSM managed-instance ARN
// (arn:aws:ssm:region:account:managed-instance/mi-…).
func idFromARN(s string) (string, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return "", errorf(ErrInvalid, "%q is not an ARN", s)
	}
	typ, id, _ := strings.Cut(a.Resource, "/")
	switch {
	case a.Service == "ec2" && typ == "instance" && IsInstanceID(id):
		return id, nil
	case a.Service == "ssm" && typ == "managed-instance" && IsNodeID(id):
		return id, nil
	}
	return "", errorf(ErrInvalid, "%q is not an EC2 instance or SSM managed-instance ARN", s)
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

// isPrivateDNSName reports whether s looks like an EC2 private DNS name:
// ip-10-0-1-5.ec2.internal, ip-10-0-1-5.eu-west-1.compute.internal or the
// resource-name form i-0123456789abcdef0.us-west-2.compute.internal.
func isPrivateDNSName(s string) bool {
	l := strings.ToLower(strings.TrimSuffix(s, "."))
	return strings.Count(l, ".") >= 2 &&
		(strings.HasSuffix(l, ".ec2.internal") || strings.HasSuffix(l, ".compute.internal"))
}
