package session

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/target"
)

// Clients are the AWS APIs that commands open sessions with.
type Clients struct {
	// SSM starts, resumes and terminates sessions.
	SSM SSMAPI
	// EC2 resolves names, tags, IP addresses and DNS names to instance
	// IDs; nil allows IDs, ARNs and managed-node lookups only.
	EC2 target.EC2API
	// Nodes lists managed nodes, to resolve hybrid nodes' names and
	// addresses and to offer the interactive picker; nil skips them.
	Nodes target.SSMAPI
	// KMS serves encrypted sessions; nil refuses them.
	KMS encryption.KeyService
	// Dial configures the data channel websocket.
	Dial transport.DialOptions
}

// NewClients builds Clients from an AWS configuration.
func NewClients(cfg aws.Config) Clients {
	ssmClient := awsapi.NewSSM(cfg)
	return Clients{
		SSM:   ssmClient,
		EC2:   awsapi.NewEC2(cfg),
		Nodes: ssmClient,
		KMS:   encryption.NewLazyKMSKeyService(func() encryption.KMSAPI { return awsapi.NewKMS(cfg) }),
	}
}

// Resolver returns the target resolver over c's EC2 and SSM clients.
func (c Clients) Resolver(logf func(format string, args ...any)) target.Resolver {
	return target.Resolver{EC2: c.EC2, SSM: c.Nodes, Logf: logf}
}

// OpenTarget resolves req.Target with c.Resolver (IDs as they are, names,
// tags and addresses looked up; a pattern's single match only with
// opts.PickOne) and opens the session with c. It dials with c.Dial, and
// uses c.KMS unless opts has a key service.
func OpenTarget(ctx context.Context, c Clients, req StartRequest, opts Options) (*Session, error) {
	node, err := c.Resolver(opts.Logf).Resolve(ctx, req.Target, target.ResolveOptions{PickOne: opts.PickOne})
	if err != nil {
		return nil, err
	}
	req.Target = node.ID
	if opts.KeyService == nil {
		opts.KeyService = c.KMS
	}
	opts.Dial = c.Dial
	return Open(ctx, c.SSM, req, opts)
}
