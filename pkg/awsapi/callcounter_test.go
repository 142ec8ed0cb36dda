package awsapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// TestCallCounter counts calls per Service.Operation, not retry attempts.
func TestCallCounter(t *testing.T) {
	isolate(t, "")
	staticCreds(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried by the SDK
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cfg, err := LoadConfig(context.Background(), Options{Region: "us-east-1", EndpointURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var cc CallCounter
	c := NewSSM(cc.Instrument(cfg))
	for range 2 {
		if _, err := c.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DescribeSessions(context.Background(), &ssm.DescribeSessionsInput{State: "Active"}); err != nil {
		t.Fatal(err)
	}
	counts := cc.Counts()
	if counts["SSM.DescribeInstanceInformation"] != 2 || counts["SSM.DescribeSessions"] != 1 || cc.Total() != 3 || requests.Load() != 4 {
		t.Errorf("counts %v total %d, %d requests", counts, cc.Total(), requests.Load())
	}
	if ops := SortedOps(counts); len(ops) != 2 || ops[0] != "SSM.DescribeInstanceInformation" {
		t.Errorf("SortedOps = %v", ops)
	}
	// The config it was given is not changed.
	if _, err := NewSSM(cfg).DescribeSessions(context.Background(), &ssm.DescribeSessionsInput{State: "Active"}); err != nil || cc.Total() != 3 {
		t.Errorf("a call through the original config: %v, total %d", err, cc.Total())
	}
}
