// Package sessionlist reads Session Manager's record of sessions
// (DescribeSessions): the active ones, the ended ones of the last 30 days,
// and one session by ID. `ssmkit sessions` lists them; `ssmkit logs` finds
// the session whose transcript it prints.
package sessionlist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// API is the part of the SSM client this package uses.
type API interface {
	DescribeSessions(ctx context.Context, in *ssm.DescribeSessionsInput, optFns ...func(*ssm.Options)) (*ssm.DescribeSessionsOutput, error)
}

// pageSize is DescribeSessions' largest page.
const pageSize = 200

// Session is one session, as `sessions ls --json` prints it.
type Session struct {
	SessionID    string     `json:"session_id"`
	Target       string     `json:"target"`
	Status       string     `json:"status"`
	Owner        string     `json:"owner,omitempty"`
	DocumentName string     `json:"document_name,omitempty"`
	StartDate    *time.Time `json:"start_date,omitempty"`
	EndDate      *time.Time `json:"end_date,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

// Describe lists the sessions in state (Active or History) that match the
// filters, following every page.
func Describe(ctx context.Context, c API, state ssmtypes.SessionState, filters ...ssmtypes.SessionFilter) ([]Session, error) {
	in := &ssm.DescribeSessionsInput{State: state, Filters: filters, MaxResults: aws.Int32(pageSize)}
	pages := ssm.NewDescribeSessionsPaginator(c, in, func(o *ssm.DescribeSessionsPaginatorOptions) {
		o.StopOnDuplicateToken = true
	})
	var out []Session
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s sessions: %w", state, err)
		}
		for _, s := range page.Sessions {
			out = append(out, Session{
				SessionID: aws.ToString(s.SessionId), Target: aws.ToString(s.Target), Status: string(s.Status),
				Owner: aws.ToString(s.Owner), DocumentName: aws.ToString(s.DocumentName),
				StartDate: s.StartDate, EndDate: s.EndDate, Reason: aws.ToString(s.Reason),
			})
		}
	}
	return out, nil
}

// ErrNotFound means no active session and no session of the last 30 days
// has the ID.
var ErrNotFound = errors.New("not found")

// Find looks for the session id among the active sessions, then the ended
// ones; active says which.
func Find(ctx context.Context, c API, id string) (s Session, active bool, err error) {
	for _, state := range []ssmtypes.SessionState{ssmtypes.SessionStateActive, ssmtypes.SessionStateHistory} {
		list, err := Describe(ctx, c, state, byID(id))
		if err != nil {
			return Session{}, false, err
		}
		for _, s := range list {
			if s.SessionID == id {
				return s, state == ssmtypes.SessionStateActive, nil
			}
		}
	}
	return Session{}, false, fmt.Errorf("session %s %w among active sessions or those of the last 30 days: check the ID and --region", id, ErrNotFound)
}

// Active reports whether the session id is still active.
func Active(ctx context.Context, c API, id string) (bool, error) {
	list, err := Describe(ctx, c, ssmtypes.SessionStateActive, byID(id))
	if err != nil {
		return false, err
	}
	return len(list) > 0, nil
}

func byID(id string) ssmtypes.SessionFilter {
	return ssmtypes.SessionFilter{Key: ssmtypes.SessionFilterKeySessionId, Value: aws.String(id)}
}
