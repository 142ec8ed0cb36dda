package session

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
	"github.com/ssmkit/ssmkit/pkg/protocol/encryption"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// Clients are the AWS APIs that commands open sessions with.
type Clients struct {
	// SSM starts, resumes and terminates sessions.
	SSM SSMAPI
	// EC2 resolves Name tags to instance IDs; nil allows IDs only.
	EC2 EC2API
	// KMS serves encrypted sessions; nil refuses them.
	KMS encryption.KeyService
	// Dial configures the data channel websocket.
	Dial transport.DialOptions
}

// NewClients builds Clients from an AWS configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		SSM: awsapi.NewSSM(cfg),
		EC2: awsapi.NewEC2(cfg),
		KMS: encryption.NewKMSKeyService(awsapi.NewKMS(cfg)),
	}
}

// OpenTarget resolves req.Target with ResolveTarget and opens the session
// with c. It dials with c.Dial, and uses c.KMS unless opts has a key
// service.
func OpenTarget(ctx context.Context, c Clients, req StartRequest, opts Options) (*Session, error) {
	id, err := ResolveTarget(ctx, c.EC2, req.Target)
	if err != nil {
		return nil, err
	}
	req.Target = id
	if opts.KeyService == nil {
		opts.KeyService = c.KMS
	}
	opts.Dial = c.Dial
	return Open(ctx, c.SSM, req, opts)
}
