package awsapi

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts AWS API calls per "Service.Operation". Install it on
// an aws.Config with Instrument; it counts calls, not retry attempts.
type CallCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Instrument returns a copy of cfg whose clients report every call to c.
func (c *CallCounter) Instrument(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), c.addMiddleware)
	return cfg
}

func (c *CallCounter) addMiddleware(stack *middleware.Stack) error {
	mw := middleware.InitializeMiddlewareFunc("ssmkitCallCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx))
			return next.HandleInitialize(ctx, in)
		})
	// After: the service ID and operation name are set by earlier
	// initialize middleware.
	if err := stack.Initialize.Add(mw, middleware.After); err != nil {
		return fmt.Errorf("adding the call counter: %w", err)
	}
	return nil
}

func (c *CallCounter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
}

// Counts returns a copy of the counts.
func (c *CallCounter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Total is the number of calls counted.
func (c *CallCounter) Total() int {
	n := 0
	for _, v := range c.Counts() {
		n += v
	}
	return n
}

// SortedOps returns the operations counted, sorted.
func SortedOps(counts map[string]int) []string {
	ops := make([]string, 0, len(counts))
	for k := range counts {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	return ops
}
