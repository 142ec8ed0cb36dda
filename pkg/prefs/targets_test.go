package prefs

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// pagedLogGroups serves the groups whose names start with the prefix, two
// a page; the last page repeats its token when repeatLast is set.
type pagedLogGroups struct {
	LogsAPI    // only DescribeLogGroups is used
	groups     []string
	repeatLast bool
	calls      int
}

func (f *pagedLogGroups) DescribeLogGroups(_ context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	f.calls++
	var match []string
	for _, g := range f.groups {
		if strings.HasPrefix(g, aws.ToString(in.LogGroupNamePrefix)) {
			match = append(match, g)
		}
	}
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	end := min(start+2, len(match))
	out := &cloudwatchlogs.DescribeLogGroupsOutput{}
	for _, g := range match[start:end] {
		out.LogGroups = append(out.LogGroups, cwtypes.LogGroup{LogGroupName: aws.String(g)})
	}
	if end < len(match) {
		out.NextToken = aws.String(strconv.Itoa(end))
	} else if f.repeatLast {
		out.NextToken = in.NextToken
	}
	return out, nil
}

func TestLogGroupExistsPages(t *testing.T) {
	groups := []string{"/ssm/a", "/ssm/a-1", "/ssm/a-2", "/ssm/a-3", "/ssm/a-4", "/other"}
	for _, repeat := range []bool{false, true} {
		for name, want := range map[string]bool{"/ssm/a-4": true, "/ssm/a": true, "/ssm/a-5": false, "/other": true, "/ssm": false} {
			f := &pagedLogGroups{groups: groups, repeatLast: repeat}
			got, err := logGroupExists(context.Background(), f, name)
			if err != nil || got != want {
				t.Errorf("repeat=%v: logGroupExists(%s) = %v, %v; want %v", repeat, name, got, err, want)
			}
			if f.calls > 4 {
				t.Errorf("repeat=%v: %s took %d calls", repeat, name, f.calls)
			}
		}
	}
}
