package awsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// callInfo collects, per API call, what the attempts saw. The finalize
// middleware runs once per attempt, below the retry loop, and fills it in
// for the initialize middleware to print when the call returns.
type callInfo struct {
	host     string
	statuses []string // one per attempt
}

type callInfoKey struct{}

// debugLogging returns a stack mutator that prints one line per API call to
// w: service, operation, endpoint host, final HTTP status, attempts (with
// each attempt's status when there were retries), duration and request ID. It deliberately prints no headers, query strings or bodies:
// those carry signatures, session tokens and (for ssm:StartSession) the
// stream token. The SDK's own LogRequest mode would print all of them.
func debugLogging(w io.Writer) func(*middleware.Stack) error {
	var mu sync.Mutex // concurrent calls share w
	return func(stack *middleware.Stack) error {
		perCall := middleware.InitializeMiddlewareFunc("ssmkitDebugCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				info := &callInfo{}
				ctx = context.WithValue(ctx, callInfoKey{}, info)
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				attempts := fmt.Sprint(len(info.statuses))
				if len(info.statuses) > 1 {
					attempts += " (" + strings.Join(info.statuses, ",") + ")"
				}
				line := fmt.Sprintf("debug: %s.%s host=%s status=%s attempts=%s duration=%s",
					awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx),
					orDash(info.host), status(md, err), attempts,
					time.Since(start).Round(time.Millisecond))
				if id := requestID(md, err); id != "" {
					line += " request-id=" + id
				}
				mu.Lock()
				_, _ = fmt.Fprintln(w, line)
				mu.Unlock()
				return out, md, err
			})
		// After: service metadata (service ID, operation) is registered by
		// initialize middleware that must run before ours.
		if err := stack.Initialize.Add(perCall, middleware.After); err != nil {
			return fmt.Errorf("adding debug logging: %w", err)
		}
		perAttempt := middleware.FinalizeMiddlewareFunc("ssmkitDebugAttempt",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				info, ok := ctx.Value(callInfoKey{}).(*callInfo)
				if !ok {
					return next.HandleFinalize(ctx, in)
				}
				if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL != nil {
					info.host = req.URL.Host
				}
				out, md, err := next.HandleFinalize(ctx, in)
				info.statuses = append(info.statuses, status(md, err))
				return out, md, err
			})
		// After: below the retry middleware, so it runs once per attempt.
		if err := stack.Finalize.Add(perAttempt, middleware.After); err != nil {
			return fmt.Errorf("adding debug logging: %w", err)
		}
		return nil
	}
}

func status(md middleware.Metadata, err error) string {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return fmt.Sprint(respErr.HTTPStatusCode())
	}
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil {
		return fmt.Sprint(resp.StatusCode)
	}
	if err != nil {
		return "error"
	}
	return "-"
}

func requestID(md middleware.Metadata, err error) string {
	var withID interface{ ServiceRequestID() string }
	if errors.As(err, &withID) {
		return withID.ServiceRequestID()
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
