package policy

import (
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
			got := Evaluate(docs, tt.action, tt.resource)
			if got.Decision != tt.want {
				t.Errorf("Evaluate = %v (by %q), want %v", got.Decision, got.By, tt.want)
			}
			if (got.Decision == ImplicitDeny) != (got.By == "") {
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

func TestTrust(t *testing.T) {
	trust := mustParse(t, "trust", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	if got := TrustedBy(trust, "Service:ec2.amazonaws.com", "sts:AssumeRole"); got != Allowed {
		t.Errorf("ec2 = %v", got)
	}
	if got := TrustedBy(trust, "Service:ssm.amazonaws.com", "sts:AssumeRole"); got != ImplicitDeny {
		t.Errorf("ssm = %v", got)
	}
	key := mustParse(t, "key", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`)
	if got := TrustedBy(key, "AWS:arn:aws:iam::123456789012:role/r", "kms:Decrypt"); got != Allowed {
		t.Errorf("account root = %v", got)
	}
	if got := TrustedBy(key, "AWS:arn:aws:iam::999999999999:role/r", "kms:Decrypt"); got != ImplicitDeny {
		t.Errorf("other account = %v", got)
	}
	star := mustParse(t, "star", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Condition":{"StringEquals":{"kms:CallerAccount":"1"}}}]}`)
	if got := TrustedBy(star, "AWS:arn:aws:iam::1:role/r", "kms:Decrypt"); got != Conditional {
		t.Errorf("star with condition = %v", got)
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
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := Parse("fuzz", doc)
		if err != nil {
			return
		}
		_ = Evaluate([]Document{d}, "ssm:StartSession", "*")
		_ = TrustedBy(d, "Service:ec2.amazonaws.com", "sts:AssumeRole")
		_ = Actions(d)
	})
}
