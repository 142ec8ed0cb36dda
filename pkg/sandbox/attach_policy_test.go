package sandbox

import (
	"net/url"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "ssm:UpdateInstanceInformation", true},
		{"ssm:*", "ssm:UpdateInstanceInformation", true},
		{"SSM:updateinstanceinformation", "ssm:UpdateInstanceInformation", true},
		{"ssm:Update*Information", "ssm:UpdateInstanceInformation", true},
		{"ssmmessages:*Channel", "ssmmessages:OpenDataChannel", true},
		{"ssmmessages:Open?ataChannel", "ssmmessages:OpenDataChannel", true},
		{"ssm:*", "ssmmessages:OpenDataChannel", false},
		{"ssm*", "ssmmessages:OpenDataChannel", true},
		{"ec2messages:GetMessage", "ec2messages:GetMessages", false},
		{"", "ec2messages:GetMessages", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
	}
	for _, tt := range tests {
		if got := wildcardMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestPolicyAllows(t *testing.T) {
	const core = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation","ssm:GetDocument"],"Resource":"*"},
		{"Effect":"Allow","Action":"ssmmessages:*","Resource":"*"},
		{"Effect":"Allow","Action":["ec2messages:GetMessages"],"Resource":"*"}]}`
	tests := []struct {
		name string
		docs []string
		want map[string]bool // action → allowed; unlisted core actions follow all
		all  bool
	}{
		{name: "core policy", docs: []string{core}, all: true},
		{name: "url-encoded", docs: []string{url.QueryEscape(core)}, all: true},
		{name: "admin", docs: []string{`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`}, all: true},
		{name: "nothing", docs: nil, all: false},
		{name: "explicit deny wins", docs: []string{core, `{"Statement":[{"Effect":"Deny","Action":"ssmmessages:Open*","Resource":"*"}]}`},
			all: true, want: map[string]bool{"ssmmessages:OpenControlChannel": false, "ssmmessages:OpenDataChannel": false}},
		{name: "not action", docs: []string{`{"Statement":[{"Effect":"Allow","NotAction":"ec2messages:*","Resource":"*"}]}`},
			all: true, want: map[string]bool{"ec2messages:GetMessages": false}},
		{name: "only ssm", docs: []string{`{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}`},
			all: false, want: map[string]bool{"ssm:UpdateInstanceInformation": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var docs []policyDocument
			for _, d := range tt.docs {
				pd, err := parsePolicy(d)
				if err != nil {
					t.Fatal(err)
				}
				docs = append(docs, pd)
			}
			for _, a := range CoreActions {
				want, ok := tt.want[a]
				if !ok {
					want = tt.all
				}
				if got := allowed(docs, a); got != want {
					t.Errorf("allowed(%s) = %v, want %v", a, got, want)
				}
			}
		})
	}
}

func TestParsePolicyRejectsGarbage(t *testing.T) {
	for _, doc := range []string{"", "%zz", "{", `{"Statement":7}`, `{"Statement":[{"Action":7}]}`, "null"} {
		if _, err := parsePolicy(doc); err == nil && doc != "null" {
			t.Errorf("parsePolicy(%q): no error", doc)
		}
	}
}
