package sessionlist

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// pagedSSM serves sessions per state in pages of size, with a token that
// repeats on the last page when repeatLast is set (as some emulators do).
type pagedSSM struct {
	sessions   map[ssmtypes.SessionState][]string
	size       int
	repeatLast bool
	calls      int
	err        error
}

func (f *pagedSSM) DescribeSessions(_ context.Context, in *ssm.DescribeSessionsInput, _ ...func(*ssm.Options)) (*ssm.DescribeSessionsOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if aws.ToInt32(in.MaxResults) != pageSize {
		return nil, errors.New("MaxResults not set")
	}
	var ids []string
	for _, id := range f.sessions[in.State] {
		keep := true
		for _, flt := range in.Filters {
			if flt.Key == ssmtypes.SessionFilterKeySessionId && aws.ToString(flt.Value) != id {
				keep = false
			}
		}
		if keep {
			ids = append(ids, id)
		}
	}
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	end := min(start+f.size, len(ids))
	out := &ssm.DescribeSessionsOutput{}
	for _, id := range ids[start:end] {
		out.Sessions = append(out.Sessions, ssmtypes.Session{SessionId: aws.String(id), Status: ssmtypes.SessionStatusConnected})
	}
	switch {
	case end < len(ids):
		out.NextToken = aws.String(strconv.Itoa(end))
	case f.repeatLast && in.NextToken != nil:
		out.NextToken = in.NextToken
	}
	return out, nil
}

func ids(n int, prefix string) []string {
	var out []string
	for i := range n {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

func TestDescribeFollowsEveryPage(t *testing.T) {
	for _, repeat := range []bool{false, true} {
		f := &pagedSSM{sessions: map[ssmtypes.SessionState][]string{ssmtypes.SessionStateActive: ids(7, "s-")}, size: 3, repeatLast: repeat}
		list, err := Describe(context.Background(), f, ssmtypes.SessionStateActive)
		if err != nil || len(list) != 7 || list[6].SessionID != "s-6" || list[0].Status != "Connected" {
			t.Fatalf("repeat=%v: %d sessions, %v", repeat, len(list), err)
		}
		if want := 3 + map[bool]int{false: 0, true: 1}[repeat]; f.calls > want {
			t.Errorf("repeat=%v: %d calls, want at most %d", repeat, f.calls, want)
		}
	}
}

func TestFindAndActive(t *testing.T) {
	f := &pagedSSM{size: 2, sessions: map[ssmtypes.SessionState][]string{
		ssmtypes.SessionStateActive:  {"a-1", "a-2", "a-3"},
		ssmtypes.SessionStateHistory: {"h-1", "h-2", "h-3"},
	}}
	ctx := context.Background()
	if s, active, err := Find(ctx, f, "a-3"); err != nil || !active || s.SessionID != "a-3" {
		t.Errorf("Find(a-3) = %+v, %v, %v", s, active, err)
	}
	if s, active, err := Find(ctx, f, "h-2"); err != nil || active || s.SessionID != "h-2" {
		t.Errorf("Find(h-2) = %+v, %v, %v", s, active, err)
	}
	_, _, err := Find(ctx, f, "x-1")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "session x-1 not found among active sessions") {
		t.Errorf("Find(x-1) err = %v", err)
	}
	if ok, err := Active(ctx, f, "a-1"); !ok || err != nil {
		t.Errorf("Active(a-1) = %v, %v", ok, err)
	}
	if ok, err := Active(ctx, f, "h-1"); ok || err != nil {
		t.Errorf("Active(h-1) = %v, %v", ok, err)
	}
	f.err = errors.New("AccessDeniedException: no")
	if _, _, err := Find(ctx, f, "a-1"); err == nil || !errors.Is(err, f.err) || !strings.Contains(err.Error(), "listing Active sessions") {
		t.Errorf("Find with an API error = %v", err)
	}
}
