package cmdutil

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
	"github.com/ssmkit/ssmkit/pkg/session"
	"github.com/ssmkit/ssmkit/pkg/session/sessiontest"
	"github.com/ssmkit/ssmkit/pkg/target"
)

func TestTargetResolve(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	c := session.Clients{EC2: &sessiontest.EC2{Names: map[string][]string{
		"web": {"i-0aaaaaaaaaaaaaaaa"}, "twin": {"i-0aaaaaaaaaaaaaaab", "i-0aaaaaaaaaaaaaaac"},
	}}}
	ctx := context.Background()
	var flagErr *FlagError
	for _, tt := range []struct {
		target  Target
		want    string
		usage   bool
		wantErr string
	}{
		{target: Target{Arg: "i-0123456789abcdef0"}, want: "i-0123456789abcdef0"},
		{target: Target{Arg: "web"}, want: "i-0aaaaaaaaaaaaaaaa"},
		{target: Target{Arg: "twin"}, usage: true, wantErr: "matches 2 nodes"},
		{target: Target{Arg: "tag:oops"}, usage: true, wantErr: "is not tag:KEY=VALUE"},
		{target: Target{Arg: "nope"}, wantErr: "no running instance or managed node matches"},
		{target: Target{}, usage: true, wantErr: "no target given"}, // not a terminal
	} {
		id, err := tt.target.Resolve(ctx, ios, c, nil)
		if tt.wantErr == "" {
			if err != nil || id != tt.want {
				t.Errorf("%+v: %q, %v", tt.target, id, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &flagErr) != tt.usage {
			t.Errorf("%+v: err = %v (usage %v), want %q usage %v", tt.target, err, errors.As(err, &flagErr), tt.wantErr, tt.usage)
		}
		if !tt.usage && !errors.Is(err, target.ErrNotFound) {
			t.Errorf("%+v: err = %v, want ErrNotFound", tt.target, err)
		}
	}
}
