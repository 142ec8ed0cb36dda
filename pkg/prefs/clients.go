package prefs

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssmkit/ssmkit/pkg/awsapi"
)

// Clients are the AWS APIs the preferences commands use.
type Clients struct {
	SSM  SSMAPI
	KMS  KMSAPI
	S3   S3API
	Logs LogsAPI
	// Region is the configuration's region (for CreateBucket).
	Region string
}

// NewClients builds Clients from an AWS configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		SSM:    awsapi.NewSSM(cfg),
		KMS:    awsapi.NewKMS(cfg),
		S3:     awsapi.NewS3(cfg),
		Logs:   awsapi.NewCloudWatchLogs(cfg),
		Region: cfg.Region,
	}
}
