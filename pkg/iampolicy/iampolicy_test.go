package iampolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// coreDoc is AmazonSSMManagedInstanceCore as moto serves it (v2).
const coreDoc = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["ssm:DescribeAssociation","ssm:GetDeployablePatchSnapshotForInstance","ssm:GetDocument","ssm:DescribeDocument","ssm:GetManifest","ssm:GetParameter","ssm:GetParameters","ssm:ListAssociations","ssm:ListInstanceAssociations","ssm:PutInventory","ssm:PutComplianceItems","ssm:PutConfigurePackageResult","ssm:UpdateAssociationStatus","ssm:UpdateInstanceAssociationStatus","ssm:UpdateInstanceInformation"],"Resource":"*"},
 {"Effect":"Allow","Action":["ssmmessages:CreateControlChannel","ssmmessages:CreateDataChannel","ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel"],"Resource":"*"},
 {"Effect":"Allow","Action":["ec2messages:AcknowledgeMessage","ec2messages:DeleteMessage","ec2messages:FailMessage","ec2messages:GetEndpoint","ec2messages:GetMessages","ec2messages:SendReply"],"Resource":"*"}]}`

func mustParse(t *testing.T, name, doc string) Document {
	t.Helper()
	d, err := Parse(name, doc)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return d
}

func TestMatch(t *testing.T) {
	tests := []struct {
		p, s string
		fold bool
		want bool
	}{
		{"*", "", false, true},
		{"*", "anything", false, true},
		{"ssm:*", "ssm:StartSession", true, true},
		{"SSM:start*", "ssm:StartSession", true, true},
		{"SSM:start*", "ssm:StartSession", false, false},
		{"ssm:Get?", "ssm:GetX", false, true},
		{"ssm:Get?", "ssm:Get", false, false},
		{"ssm:Get?", "ssm:GetXY", false, false},
		{"ssmmessages:*Channel", "ssmmessages:OpenDataChannel", true, true},
		{"ssmmessages:*Channel", "ssmmessages:OpenDataChannels", true, false},
		{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:1:instance/i-1", false, true},
		{"arn:aws:ec2:*:*:instance/i-2", "arn:aws:ec2:us-east-1:1:instance/i-1", false, false},
		{"a*b*c", "aXbYc", false, true},
		{"a*b*c", "aXbY", false, false},
		{"**", "x", false, true},
		{"", "", false, true},
		{"", "x", false, false},
	}
	for _, tt := range tests {
		if got := Match(tt.p, tt.s, tt.fold); got != tt.want {
			t.Errorf("Match(%q, %q, %v) = %v, want %v", tt.p, tt.s, tt.fold, got, tt.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	const inst = "arn:aws:ec2:us-east-1:123456789012:instance/i-1"
	tests := []struct {
		name     string
		docs     []string
		action   string
		resource string
		want     Decision
	}{
		{name: "core policy grants UpdateInstanceInformation", docs: []string{coreDoc}, action: "ssm:UpdateInstanceInformation", resource: inst, want: Allowed},
		{name: "core policy does not grant StartSession", docs: []string{coreDoc}, action: "ssm:StartSession", resource: inst, want: ImplicitDeny},
		{name: "no documents", action: "ssm:GetDocument", resource: "*", want: ImplicitDeny},
		{name: "service wildcard, any case", docs: []string{`{"Statement":{"Effect":"allow","Action":"SSMMessages:*","Resource":"*"}}`},
			action: "ssmmessages:OpenDataChannel", resource: "*", want: Allowed},
		{name: "explicit deny wins over allow", docs: []string{coreDoc, `{"Statement":[{"Effect":"Deny","Action":"ssmmessages:Open*","Resource":"*"}]}`},
			action: "ssmmessages:OpenControlChannel", resource: "*", want: ExplicitDeny},
		{name: "deny elsewhere does not matter", docs: []string{coreDoc, `{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`},
			action: "ssmmessages:OpenControlChannel", resource: "*", want: Allowed},
		{name: "NotAction allow", docs: []string{`{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: Allowed},
		{name: "NotAction excludes", docs: []string{`{"Statement":[{"Effect":"Allow","NotAction":["ssm*"],"Resource":"*"}]}`},
			action: "ssmmessages:CreateControlChannel", resource: "*", want: ImplicitDeny},
		{name: "NotAction deny", docs: []string{coreDoc, `{"Statement":[{"Effect":"Deny","NotAction":"ec2messages:*","Resource":"*"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: ExplicitDeny},
		{name: "resource pattern matches", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"arn:aws:ec2:*:*:instance/*"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: Allowed},
		{name: "resource pattern misses", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"arn:aws:ec2:*:*:instance/i-2"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: ImplicitDeny},
		{name: "NotResource", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"arn:aws:ec2:*:*:instance/i-2"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: Allowed},
		{name: "NotResource excludes", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"*","NotResource":"arn:aws:ec2:*:*:instance/i-?"}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: ImplicitDeny},
		{name: "conditional allow", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: Conditional},
		{name: "conditional deny shadows allow", docs: []string{coreDoc, `{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`},
			action: "ssm:UpdateInstanceInformation", resource: inst, want: Conditional},
		{name: "unconditional allow beats conditional allow", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{"X":{}}},{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}`},
			action: "ssm:GetDocument", resource: "*", want: Allowed},
		{name: "url-encoded document", docs: []string{"%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ssm%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"},
			action: "ssm:GetDocument", resource: "*", want: Allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var docs []Document
			for i, d := range tt.docs {
				docs = append(docs, mustParse(t, "doc"+string(rune('0'+i)), d))
			}
			got := Evaluate(docs, Request{Action: tt.action, Resource: tt.resource})
			if got.Decision != tt.want {
				t.Errorf("Evaluate = %v (by %q), want %v", got.Decision, got.By, tt.want)
			}
			if (got.Decision == ImplicitDeny) != (got.By == "") || (got.Decision == ImplicitDeny) != (got.Index < 0) {
				t.Errorf("By = %q for %v", got.By, got.Decision)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, doc := range []string{
		``, `[]`, `{"Statement":[{"Effect":"Maybe","Action":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":3}]}`,
		`{"Statement":"x"}`,
	} {
		if _, err := Parse("bad", doc); err == nil {
			t.Errorf("Parse(%q) = nil error", doc)
		}
	}
}

func TestActions(t *testing.T) {
	d := mustParse(t, "core", coreDoc)
	acts := Actions(d)
	if len(acts) != 25 || acts[0] != "ssm:DescribeAssociation" || !strings.HasPrefix(acts[24], "ec2messages:") {
		t.Errorf("Actions = %d %v", len(acts), acts)
	}
}

// trustedBy evaluates a resource-based policy for principal p.
func trustedBy(d Document, p, action string) Decision {
	return Evaluate([]Document{d}, Request{Action: action, Principal: p}).Decision
}

func TestPrincipal(t *testing.T) {
	trust := mustParse(t, "trust", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	if got := trustedBy(trust, "Service:ec2.amazonaws.com", "sts:AssumeRole"); got != Allowed {
		t.Errorf("ec2 = %v", got)
	}
	if got := trustedBy(trust, "Service:ssm.amazonaws.com", "sts:AssumeRole"); got != ImplicitDeny {
		t.Errorf("ssm = %v", got)
	}
	key := mustParse(t, "key", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`)
	if got := trustedBy(key, "AWS:arn:aws:iam::123456789012:role/r", "kms:Decrypt"); got != Allowed {
		t.Errorf("account root = %v", got)
	}
	if got := trustedBy(key, "AWS:arn:aws:iam::999999999999:role/r", "kms:Decrypt"); got != ImplicitDeny {
		t.Errorf("other account = %v", got)
	}
	star := mustParse(t, "star", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Condition":{"StringEquals":{"kms:CallerAccount":"1"}}}]}`)
	if got := trustedBy(star, "AWS:arn:aws:iam::1:role/r", "kms:Decrypt"); got != Conditional {
		t.Errorf("star with an unknown condition key = %v", got)
	}
	if got := Evaluate([]Document{star}, Request{Action: "kms:Decrypt", Principal: "AWS:arn:aws:iam::1:role/r",
		Context: map[string][]string{"KMS:CallerAccount": {"1"}}}).Decision; got != Allowed {
		t.Errorf("star with the condition met = %v", got)
	}
	if got := Evaluate([]Document{star}, Request{Action: "kms:Decrypt", Principal: "AWS:arn:aws:iam::2:role/r",
		Context: map[string][]string{"kms:CallerAccount": {"2"}}}).Decision; got != ImplicitDeny {
		t.Errorf("star with the condition failed = %v", got)
	}

	// An endpoint policy that lets only another account use ssmmessages.
	other := mustParse(t, "vpce", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"ssmmessages:*","Resource":"*"}]}`)
	if got := trustedBy(other, "AWS:arn:aws:iam::111111111111:role/app", "ssmmessages:CreateControlChannel"); got != ImplicitDeny {
		t.Errorf("endpoint policy for another account = %v", got)
	}
	if got := trustedBy(other, "AWS:arn:aws:sts::222222222222:assumed-role/app/i-1", "ssmmessages:CreateControlChannel"); got != Allowed {
		t.Errorf("endpoint policy, its account's session = %v", got)
	}
	// A role ARN names its sessions, not other roles'.
	role := mustParse(t, "role", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:role/path/app"]},"Action":"kms:Decrypt"}]}`)
	for p, want := range map[string]Decision{
		"AWS:arn:aws:iam::1:role/path/app":            Allowed,
		"AWS:arn:aws:sts::1:assumed-role/app/i-0abc":  Allowed,
		"AWS:arn:aws:sts::1:assumed-role/other/i-0ab": ImplicitDeny,
		"AWS:arn:aws:sts::2:assumed-role/app/i-0abc":  ImplicitDeny,
		"AWS:not-an-arn": ImplicitDeny,
	} {
		if got := trustedBy(role, p, "kms:Decrypt"); got != want {
			t.Errorf("%s = %v, want %v", p, got, want)
		}
	}
	// NotPrincipal with Deny: everyone but the admin role is denied.
	notp := mustParse(t, "notp", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:role/admin"},"Action":"s3:Delete*"}]}`)
	if got := trustedBy(notp, "AWS:arn:aws:iam::1:role/admin", "s3:DeleteObject"); got != Allowed {
		t.Errorf("NotPrincipal admin = %v", got)
	}
	if got := trustedBy(notp, "AWS:arn:aws:iam::1:role/app", "s3:DeleteObject"); got != ExplicitDeny {
		t.Errorf("NotPrincipal app = %v", got)
	}
	// A statement that names no principal applies to everyone (endpoint
	// policies may omit it).
	none := mustParse(t, "none", `{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}`)
	if got := trustedBy(none, "AWS:arn:aws:iam::1:role/app", "ssm:UpdateInstanceInformation"); got != Allowed {
		t.Errorf("no principal = %v", got)
	}
}

func TestConditions(t *testing.T) {
	// The repository's user-access module: sessions on tagged instances.
	const userAccess = `{"Version":"2012-10-17","Statement":[
	 {"Sid":"StartSessionOnTaggedInstances","Effect":"Allow","Action":"ssm:StartSession",
	  "Resource":["arn:aws:ec2:*:*:instance/*","arn:aws:ssm:*:*:managed-instance/*"],
	  "Condition":{"StringLike":{"ssm:resourceTag/SessionAccess":["true"]},"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}},
	 {"Sid":"ManageOwnSessions","Effect":"Allow","Action":["ssm:TerminateSession","ssm:ResumeSession"],
	  "Resource":"arn:aws:ssm:*:*:session/${aws:userid}-*"}]}`
	d := mustParse(t, "user-access", userAccess)
	const inst = "arn:aws:ec2:us-east-1:1:instance/i-1"
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"tag matches", Request{Action: "ssm:StartSession", Resource: inst,
			Context: map[string][]string{"ssm:resourceTag/SessionAccess": {"true"}, "ssm:SessionDocumentAccessCheck": {"true"}}}, Allowed},
		{"tag differs", Request{Action: "ssm:StartSession", Resource: inst,
			Context: map[string][]string{"ssm:resourceTag/SessionAccess": {"no"}, "ssm:SessionDocumentAccessCheck": {"true"}}}, ImplicitDeny},
		{"tag absent", Request{Action: "ssm:StartSession", Resource: inst,
			Context: map[string][]string{"ssm:resourceTag/SessionAccess": {}, "ssm:SessionDocumentAccessCheck": {"true"}}}, ImplicitDeny},
		{"tag unknown", Request{Action: "ssm:StartSession", Resource: inst,
			Context: map[string][]string{"ssm:SessionDocumentAccessCheck": {"true"}}}, Conditional},
		{"every tag known, this one absent", Request{Action: "ssm:StartSession", Resource: inst, AbsentPrefixes: []string{"ssm:resourceTag/"},
			Context: map[string][]string{"ssm:resourceTag/Other": {"x"}, "ssm:SessionDocumentAccessCheck": {"true"}}}, ImplicitDeny},
		{"IfExists with the key absent", Request{Action: "ssm:StartSession", Resource: inst,
			Context: map[string][]string{"ssm:resourceTag/SessionAccess": {"true"}, "ssm:SessionDocumentAccessCheck": {}}}, Allowed},
		{"own session", Request{Action: "ssm:TerminateSession", Resource: "arn:aws:ssm:us-east-1:1:session/AIDAX-0123",
			Context: map[string][]string{"aws:userid": {"AIDAX"}}}, Allowed},
		{"someone else's session", Request{Action: "ssm:TerminateSession", Resource: "arn:aws:ssm:us-east-1:1:session/AIDAY-0123",
			Context: map[string][]string{"aws:userid": {"AIDAX"}}}, ImplicitDeny},
		{"no userid: the variable matches nothing", Request{Action: "ssm:TerminateSession", Resource: "arn:aws:ssm:us-east-1:1:session/AIDAX-0123"}, ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate([]Document{d}, tt.req); got.Decision != tt.want {
				t.Errorf("Evaluate = %v (%s), want %v", got.Decision, got.By, tt.want)
			}
		})
	}

	ops := []struct {
		cond string
		ctx  map[string][]string
		want Decision
	}{
		{`{"StringEquals":{"k":"a"}}`, map[string][]string{"k": {"a"}}, Allowed},
		{`{"StringEquals":{"k":"a"}}`, map[string][]string{"k": {"A"}}, ImplicitDeny},
		{`{"StringEqualsIgnoreCase":{"k":"a"}}`, map[string][]string{"k": {"A"}}, Allowed},
		{`{"StringNotEquals":{"k":["a","b"]}}`, map[string][]string{"k": {"c"}}, Allowed},
		{`{"StringNotEquals":{"k":["a","b"]}}`, map[string][]string{"k": {"b"}}, ImplicitDeny},
		{`{"StringNotLike":{"k":"a*"}}`, map[string][]string{"k": {"abc"}}, ImplicitDeny},
		{`{"ArnLike":{"aws:SourceArn":"arn:aws:ec2:*:1:instance/*"}}`, map[string][]string{"aws:SourceArn": {"arn:aws:ec2:us-east-1:1:instance/i-1"}}, Allowed},
		{`{"Bool":{"aws:SecureTransport":true}}`, map[string][]string{"aws:SecureTransport": {"true"}}, Allowed},
		{`{"Bool":{"aws:SecureTransport":"true"}}`, map[string][]string{"aws:SecureTransport": {"false"}}, ImplicitDeny},
		{`{"Null":{"k":"true"}}`, map[string][]string{"k": {}}, Allowed},
		{`{"Null":{"k":"false"}}`, map[string][]string{"k": {}}, ImplicitDeny},
		{`{"ForAnyValue:StringEquals":{"k":["a","b"]}}`, map[string][]string{"k": {"x", "b"}}, Allowed},
		{`{"ForAllValues:StringEquals":{"k":["a","b"]}}`, map[string][]string{"k": {"x", "b"}}, ImplicitDeny},
		{`{"ForAllValues:StringEquals":{"k":["a","b"]}}`, map[string][]string{"k": {}}, Allowed},
		{`{"StringEquals":{"k":"a"}}`, map[string][]string{"k": {"a", "b"}}, Conditional},
		{`{"NumericLessThan":{"k":"3"}}`, map[string][]string{"k": {"1"}}, Conditional},
		{`{"StringEquals":{"k":"${aws:username}"}}`, map[string][]string{"k": {"bob"}, "aws:username": {"bob"}}, Allowed},
		{`{"StringEquals":{"a":"1"},"StringLike":{"b":"2"}}`, map[string][]string{"a": {"1"}, "b": {"3"}}, ImplicitDeny},
	}
	for _, o := range ops {
		d := mustParse(t, "c", `{"Statement":{"Effect":"Allow","Action":"x:Y","Resource":"*","Condition":`+o.cond+`}}`)
		if got := Evaluate([]Document{d}, Request{Action: "x:Y", Resource: "r", Context: o.ctx}).Decision; got != o.want {
			t.Errorf("%s with %v = %v, want %v", o.cond, o.ctx, got, o.want)
		}
	}
}

func TestVariables(t *testing.T) {
	ctx := map[string][]string{"aws:username": {"bob"}}
	tests := []struct {
		pattern, resource string
		want              bool
	}{
		{"arn:aws:iam::1:user/${aws:username}", "arn:aws:iam::1:user/bob", true},
		{"arn:aws:iam::1:user/${aws:username}", "arn:aws:iam::1:user/alice", false},
		{"arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}/*", "arn:aws:s3:::b/none/x", true},
		{"arn:aws:s3:::b/${aws:PrincipalTag/team}/*", "arn:aws:s3:::b/none/x", false},
		{"arn:aws:s3:::b/${*}", "arn:aws:s3:::b/*", true},
		{"arn:aws:s3:::b/${*}", "arn:aws:s3:::b/x", false},
		{"arn:aws:s3:::b/${?}x", "arn:aws:s3:::b/?x", true},
		{"arn:aws:s3:::b/${$}", "arn:aws:s3:::b/$", true},
	}
	for _, tt := range tests {
		d := mustParse(t, "v", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"`+tt.pattern+`"}}`)
		got := Evaluate([]Document{d}, Request{Action: "s3:GetObject", Resource: tt.resource, Context: ctx}).Decision == Allowed
		if got != tt.want {
			t.Errorf("%s vs %s = %v, want %v", tt.pattern, tt.resource, got, tt.want)
		}
	}
}

// TestActionOnly covers what the sandbox asks before an emulated agent may
// register: do the role's policies allow the agent's actions, whatever
// the resource?
func TestActionOnly(t *testing.T) {
	const core = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation","ssm:GetDocument"],"Resource":"arn:aws:ec2:*:*:instance/*"},
		{"Effect":"Allow","Action":"ssmmessages:*","Resource":"*"},
		{"Effect":"Allow","Action":["ec2messages:GetMessages"],"Resource":"*"}]}`
	actions := []string{"ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:OpenDataChannel", "ec2messages:GetMessages"}
	tests := []struct {
		name string
		docs []string
		want map[string]bool // action → allowed; unlisted actions follow all
		all  bool
	}{
		{name: "core policy", docs: []string{core}, all: true},
		{name: "url-encoded", docs: []string{url.QueryEscape(core)}, all: true},
		{name: "url-encoded with a leading space", docs: []string{url.QueryEscape(" " + core)}, all: true},
		{name: "admin", docs: []string{`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`}, all: true},
		{name: "nothing", docs: nil, all: false},
		{name: "explicit deny wins", docs: []string{core, `{"Statement":[{"Effect":"Deny","Action":"ssmmessages:Open*","Resource":"*"}]}`},
			all: true, want: map[string]bool{"ssmmessages:OpenDataChannel": false}},
		{name: "not action", docs: []string{`{"Statement":[{"Effect":"Allow","NotAction":"ec2messages:*","Resource":"*"}]}`},
			all: true, want: map[string]bool{"ec2messages:GetMessages": false}},
		{name: "only ssm", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}`},
			all: false, want: map[string]bool{"ssm:UpdateInstanceInformation": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var docs []Document
			for i, d := range tt.docs {
				docs = append(docs, mustParse(t, fmt.Sprint(i), d))
			}
			for _, a := range actions {
				want, ok := tt.want[a]
				if !ok {
					want = tt.all
				}
				if got := Evaluate(docs, Request{Action: a}).Decision == Allowed; got != want {
					t.Errorf("%s allowed = %v, want %v", a, got, want)
				}
			}
		})
	}
}

func TestDeniesAndWithout(t *testing.T) {
	d := mustParse(t, "inline:guard", `{"Version":"2012-10-17","Statement":[
	 {"Sid":"Keep","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
	 {"Sid":"NoControl","Effect":"Deny","Action":"ssmmessages:CreateControlChannel","Resource":"*"},
	 {"Effect":"Deny","Action":"ssmmessages:*","Resource":"*"},
	 {"Sid":"OnlyOnTuesdays","Effect":"Deny","Action":"ssmmessages:*","Resource":"*","Condition":{"StringEquals":{"aws:day":"Tue"}}}]}`)
	got := Denies([]Document{d}, Request{Action: "ssmmessages:CreateControlChannel", Resource: "*"})
	if len(got) != 2 || got[0].Sid != "NoControl" || got[0].Index != 1 || got[1].Index != 2 || got[1].By != "inline:guard#2" || got[0].Document != "inline:guard" {
		t.Fatalf("Denies = %+v", got)
	}
	rest, n := Without(d, 1, 2)
	if n != 2 {
		t.Errorf("%d statements remain", n)
	}
	back := mustParse(t, "back", rest)
	if r := Evaluate([]Document{back}, Request{Action: "ssmmessages:CreateControlChannel", Resource: "*", Context: map[string][]string{"aws:day": {"Mon"}}}); r.Decision != ImplicitDeny {
		t.Errorf("after Without: %v", r.Decision)
	}
	if len(back.Statements) != 2 || back.Statements[0].Sid != "Keep" || back.Statements[1].Sid != "OnlyOnTuesdays" || len(back.Statements[1].Conditions) != 1 {
		t.Errorf("Without kept %+v", back.Statements)
	}
	if !strings.HasPrefix(rest, `{"Version":"2012-10-17","Statement":[{`) {
		t.Errorf("Without = %s", rest)
	}
	if _, n := Without(d, 0, 1, 2, 3); n != 0 {
		t.Errorf("%d remain after dropping all", n)
	}
}

func TestWith(t *testing.T) {
	d := mustParse(t, "key", `{"Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"kms:*","Resource":"*"}]}`)
	out := With(d, map[string]any{"Sid": "Role", "Effect": "Allow", "Principal": map[string]string{"AWS": "arn:aws:iam::2:role/r"}, "Action": "kms:Decrypt", "Resource": "*"})
	back := mustParse(t, "back", out)
	if len(back.Statements) != 2 || back.Statements[0].Sid != "Root" || back.Statements[1].Sid != "Role" {
		t.Fatalf("With = %s", out)
	}
	if r := Evaluate([]Document{back}, Request{Action: "kms:Decrypt", Principal: "AWS:arn:aws:sts::2:assumed-role/r/i-1"}); r.Decision != Allowed {
		t.Errorf("the added statement does not allow: %v", r.Decision)
	}
}

func TestParseErrorsWrap(t *testing.T) {
	_, err := Parse("bad", `{"Statement":[{"Effect":"Allow","Action":3}]}`)
	if !errors.Is(err, ErrInvalidDocument) || strings.Contains(err.Error(), "%!") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse("bad", `{`)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("the JSON error is not in the chain: %v", err)
	}
	if _, err := Parse("bad", "%zz"); !errors.Is(err, ErrInvalidDocument) {
		t.Errorf("%%zz: %v", err)
	}
	if d, err := Parse("null", "null"); err != nil || len(d.Statements) != 0 {
		t.Errorf("null: %v %v", d, err)
	}
}

// refMatch is a regexp reference implementation of Match.
func refMatch(p, s string, fold bool) bool {
	var b strings.Builder
	b.WriteString("(?s)^")
	if fold {
		b.WriteString("(?i)")
	}
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(s)
}

func FuzzMatch(f *testing.F) {
	f.Add("ssm:*", "ssm:StartSession", true)
	f.Add("a*b?c", "aXXbYc", false)
	f.Add("***?", "", false)
	f.Fuzz(func(t *testing.T, p, s string, fold bool) {
		// ASCII only: ? matches one byte, the reference one rune; IAM
		// names and ARNs are ASCII.
		for _, c := range p + s {
			if c > 127 {
				return
			}
		}
		if len(p) > 64 || len(s) > 64 {
			return
		}
		if got, want := Match(p, s, fold), refMatch(p, s, fold); got != want {
			t.Errorf("Match(%q, %q, %v) = %v, reference %v", p, s, fold, got, want)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(coreDoc)
	f.Add(`{"Statement":{"Effect":"Deny","NotAction":"x","NotResource":["y"],"Principal":"*","Condition":{}}}`)
	f.Add(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:${aws:userid, 'a'}${*}","NotPrincipal":{"AWS":["1"]},"Condition":{"ForAnyValue:StringLike":{"k":[true,1,"x"]}}}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := Parse("fuzz", doc)
		if err != nil {
			return
		}
		_ = Evaluate([]Document{d}, Request{Action: "ssm:StartSession", Resource: "arn:aws:ssm:us-east-1:1:session/${x}",
			Context: map[string][]string{"x": {"y"}, "aws:userid": {"u"}}})
		_ = Evaluate([]Document{d}, Request{Action: "sts:AssumeRole", Principal: "Service:ec2.amazonaws.com"})
		_ = Denies([]Document{d}, Request{Action: "ssm:StartSession"})
		_ = Actions(d)
		rest, _ := Without(d, 0)
		if _, err := Parse("again", rest); err != nil {
			t.Errorf("Without's output does not parse: %v\n%s", err, rest)
		}
	})
}
