package awsapi

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The constructors below are where client-wide choices live, so that every
// command builds clients the same way. Commands should accept the narrow
// interface they need (defined next to the command) and pass these clients
// in; tests pass hand-written fakes instead.

// NewSSM returns a Systems Manager client.
func NewSSM(cfg aws.Config, optFns ...func(*ssm.Options)) *ssm.Client {
	return ssm.NewFromConfig(cfg, optFns...)
}

// NewEC2 returns an EC2 client.
func NewEC2(cfg aws.Config, optFns ...func(*ec2.Options)) *ec2.Client {
	return ec2.NewFromConfig(cfg, optFns...)
}

// NewIAM returns an IAM client.
func NewIAM(cfg aws.Config, optFns ...func(*iam.Options)) *iam.Client {
	return iam.NewFromConfig(cfg, optFns...)
}

// NewSTS returns an STS client.
func NewSTS(cfg aws.Config, optFns ...func(*sts.Options)) *sts.Client {
	return sts.NewFromConfig(cfg, optFns...)
}

// NewKMS returns a KMS client.
func NewKMS(cfg aws.Config, optFns ...func(*kms.Options)) *kms.Client {
	return kms.NewFromConfig(cfg, optFns...)
}

// NewCloudWatchLogs returns a CloudWatch Logs client.
func NewCloudWatchLogs(cfg aws.Config, optFns ...func(*cloudwatchlogs.Options)) *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(cfg, optFns...)
}

// NewS3 returns an S3 client. With a custom endpoint (--endpoint-url,
// AWS_ENDPOINT_URL[_S3]) it uses path-style addressing, because local
// stand-ins (moto, ssmkit sandbox) and VPC interface endpoints do not serve
// bucket-name subdomains.
func NewS3(cfg aws.Config, optFns ...func(*s3.Options)) *s3.Client {
	pathStyle := func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){pathStyle}, optFns...)...)
}

// NewRoute53 returns a Route 53 client (the doctor follows private hosted
// zones to centralised endpoints).
func NewRoute53(cfg aws.Config, optFns ...func(*route53.Options)) *route53.Client {
	return route53.NewFromConfig(cfg, optFns...)
}

// NewOrganizations returns an AWS Organizations client (the doctor lists
// an organization's accounts).
func NewOrganizations(cfg aws.Config, optFns ...func(*organizations.Options)) *organizations.Client {
	return organizations.NewFromConfig(cfg, optFns...)
}
