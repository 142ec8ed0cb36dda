package doctor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  bool
	}{
		{line: "aws ec2 start-instances --instance-ids i-1", want: []string{"aws", "ec2", "start-instances", "--instance-ids", "i-1"}},
		{line: `aws iam put-role-policy --policy-document '{"a":"b c"}'`, want: []string{"aws", "iam", "put-role-policy", "--policy-document", `{"a":"b c"}`}},
		{line: `x 'it'\''s' "a \"q\" \\ \$" b\ c`, want: []string{"x", "it's", `a "q" \ $`, "b c"}},
		{line: "x ''", want: []string{"x", ""}},
		{line: "a; rm -rf /", err: true},
		{line: "a | b", err: true},
		{line: "a $(b)", err: true},
		{line: `a "$HOME"`, err: true},
		{line: "a 'open", err: true},
		{line: `a "open`, err: true},
		{line: "a *", err: true},
		{line: "   ", err: true},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.line)
		if tt.err {
			if !errors.Is(err, ErrBadCommand) {
				t.Errorf("SplitCommand(%q) = %q, %v; want ErrBadCommand", tt.line, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

// FuzzCommandRoundTrip: whatever the arguments, the line cmd prints
// splits back into them (what --fix and the tests rely on).
func FuzzCommandRoundTrip(f *testing.F) {
	f.Add("aws", `{"Statement":[{"Effect":"Allow"}]}`, "it's $HOME; `x` | *")
	f.Add("", "a b", "\\'\"")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{a, b, c}
		for _, s := range args {
			if strings.ContainsAny(s, "\x00") {
				return
			}
		}
		got, err := SplitCommand(cmd(args...))
		if err != nil || !slices.Equal(got, args) {
			t.Errorf("cmd(%q) = %s splits into %q, %v", args, cmd(args...), got, err)
		}
	})
}

func TestFixerRefuses(t *testing.T) {
	x := &Fixer{}
	for line, want := range map[string]error{
		"aws ec2 terminate-instances --instance-ids i-1": ErrUnknownFix,
		"rm -rf /": ErrUnknownFix,
		"aws ec2 start-instances --instance-ids i-1; aws ec2 stop":                               ErrBadCommand,
		"aws ec2 delete-network-acl-entry --network-acl-id a --bogus 1":                          nil,
		"aws ec2 delete-network-acl-entry --network-acl-id a":                                    nil,
		"aws ec2 delete-network-acl-entry --network-acl-id a --rule-number 5 --egress --ingress": nil,
	} {
		err := x.Run(context.Background(), line)
		if err == nil || want != nil && !errors.Is(err, want) {
			t.Errorf("Run(%q) = %v, want an error (%v)", line, err, want)
		}
	}
	if len(FixCommands()) < 30 {
		t.Errorf("FixCommands = %v", FixCommands())
	}
}
