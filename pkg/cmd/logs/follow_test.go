package logs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

// pagedLogs is a log stream served two events a page, whose forward token
// repeats at the end of the stream, as CloudWatch Logs does.
type pagedLogs struct {
	events []string
	calls  int
}

func (f *pagedLogs) GetLogEvents(_ context.Context, in *cloudwatchlogs.GetLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error) {
	f.calls++
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		start, _ = strconv.Atoi(strings.TrimPrefix(tok, "f/"))
	}
	end := min(start+2, len(f.events))
	out := &cloudwatchlogs.GetLogEventsOutput{NextForwardToken: aws.String(fmt.Sprintf("f/%d", end))}
	for _, e := range f.events[start:end] {
		out.Events = append(out.Events, cwtypes.OutputLogEvent{Message: aws.String(e)})
	}
	return out, nil
}

// endingSession is active for the first polls, during which more output
// arrives in the stream, then ends.
type endingSession struct {
	SSMAPI // only DescribeSessions is used
	logs   *pagedLogs
	polls  int
}

func (f *endingSession) DescribeSessions(_ context.Context, in *ssm.DescribeSessionsInput, _ ...func(*ssm.Options)) (*ssm.DescribeSessionsOutput, error) {
	f.polls++
	if f.polls > 2 {
		return &ssm.DescribeSessionsOutput{}, nil
	}
	f.logs.events = append(f.logs.events, fmt.Sprintf("poll-%d-a\n", f.polls), fmt.Sprintf("poll-%d-b\n", f.polls), fmt.Sprintf("poll-%d-c\n", f.polls))
	return &ssm.DescribeSessionsOutput{Sessions: []ssmtypes.Session{{SessionId: in.Filters[0].Value}}}, nil
}

// TestFollowPrintsEveryEventOnce: --follow drains the stream page by page
// and goes on from the last forward token, so nothing is printed twice or
// skipped while the session adds output, and it stops when the session ends.
func TestFollowPrintsEveryEventOnce(t *testing.T) {
	logs := &pagedLogs{events: []string{"one\n", "two\n", "three\n"}}
	ios, _, stdout, _ := iostreams.Test()
	opts := &LogsOptions{IO: ios, SessionID: "s-1", Follow: true, PollInterval: time.Millisecond}
	found, err := printCloudWatch(context.Background(), Clients{SSM: &endingSession{logs: logs}, Logs: logs}, opts, "group", true)
	if err != nil || !found {
		t.Fatalf("printCloudWatch = %v, %v", found, err)
	}
	want := "one\ntwo\nthree\npoll-1-a\npoll-1-b\npoll-1-c\npoll-2-a\npoll-2-b\npoll-2-c\n"
	if got := stdout.String(); got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	// Three drains of three events (two pages and the call that finds the
	// repeated token), then one last drain after the session ended.
	if logs.calls != 10 {
		t.Errorf("%d GetLogEvents calls, want 10", logs.calls)
	}
}
