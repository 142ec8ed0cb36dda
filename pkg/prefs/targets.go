package prefs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ErrMissingTarget marks a KMS key, bucket or log group that the
// preferences name but that does not exist (or cannot be used).
var ErrMissingTarget = errors.New("missing logging target")

// KMSAPI is the part of the KMS client CheckTargets uses.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// S3API is the part of the S3 client CheckTargets uses.
type S3API interface {
	HeadBucket(ctx context.Context, in *s3.HeadBucketInput, optFns ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	CreateBucket(ctx context.Context, in *s3.CreateBucketInput, optFns ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	PutBucketEncryption(ctx context.Context, in *s3.PutBucketEncryptionInput, optFns ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
	PutPublicAccessBlock(ctx context.Context, in *s3.PutPublicAccessBlockInput, optFns ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
}

// LogsAPI is the part of the CloudWatch Logs client CheckTargets uses.
type LogsAPI interface {
	DescribeLogGroups(ctx context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error)
	CreateLogGroup(ctx context.Context, in *cloudwatchlogs.CreateLogGroupInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogGroupOutput, error)
	PutRetentionPolicy(ctx context.Context, in *cloudwatchlogs.PutRetentionPolicyInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.PutRetentionPolicyOutput, error)
}

// TargetOptions say how CheckTargets treats missing buckets and log groups.
type TargetOptions struct {
	// Create makes a missing bucket (default encryption SSE-KMS with the
	// preferences' key when S3 encryption is on and a key is set, AES256
	// otherwise; all public access blocked) and a missing log group (with
	// RetentionDays, and the key when CloudWatch encryption is on).
	Create bool
	// RetentionDays for a created log group (DefaultRetentionDays when 0).
	RetentionDays int32
	// Region is the bucket's region for CreateBucket ("" or us-east-1 sends
	// no location constraint).
	Region string
}

// DefaultRetentionDays is the retention of log groups CheckTargets creates.
const DefaultRetentionDays = 365

// RetentionDays lists the values CloudWatch Logs accepts.
func RetentionDays() []int32 {
	return []int32{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
}

// Created lists what CheckTargets made.
type Created struct {
	Bucket   string `json:"bucket,omitempty"`
	LogGroup string `json:"log_group,omitempty"`
}

// CheckTargets checks that the KMS key, bucket and log group d names exist
// (kms:DescribeKey, s3:HeadBucket, logs:DescribeLogGroups), creating the
// bucket and log group when opts.Create is set. It returns what it created.
// Errors wrap ErrMissingTarget when something is missing.
func CheckTargets(ctx context.Context, k KMSAPI, s S3API, l LogsAPI, d *Document, opts TargetOptions) (Created, error) {
	var created Created
	if opts.Create && opts.RetentionDays != 0 && !slices.Contains(RetentionDays(), opts.RetentionDays) {
		return created, fmt.Errorf("%w: a retention of %d days is not one CloudWatch Logs accepts (%v)", ErrInvalid, opts.RetentionDays, RetentionDays())
	}
	keyARN := ""
	if id := d.String(KeyKMSKey); id != "" {
		out, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if isCode(err, "NotFoundException") {
			return created, fmt.Errorf("%w: kmsKeyId %q does not exist in this account and region: create the key or alias first, or check --region", ErrMissingTarget, id)
		}
		if err != nil {
			return created, fmt.Errorf("checking KMS key %s: %w", id, err)
		}
		if m := out.KeyMetadata; m != nil {
			if m.KeyState != "" && m.KeyState != kmstypes.KeyStateEnabled {
				return created, fmt.Errorf("%w: kmsKeyId %q is %s, not Enabled: enable the key or choose another", ErrMissingTarget, id, m.KeyState)
			}
			keyARN = aws.ToString(m.Arn)
		}
	}
	if b := d.String(KeyS3Bucket); b != "" {
		_, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
		switch {
		case err == nil:
		case httpStatus(err) == http.StatusNotFound || isCode(err, "NotFound") || isCode(err, "NoSuchBucket"):
			if !opts.Create {
				return created, fmt.Errorf("%w: s3BucketName %q does not exist: create it, or pass --create-targets", ErrMissingTarget, b)
			}
			if err := createBucket(ctx, s, b, keyARN, d.Bool(KeyS3Encryption), opts.Region); err != nil {
				return created, err
			}
			created.Bucket = b
		case httpStatus(err) == http.StatusForbidden:
			return created, fmt.Errorf("%w: s3BucketName %q exists but this account cannot use it (403): choose a bucket you own", ErrMissingTarget, b)
		default:
			return created, fmt.Errorf("checking S3 bucket %s: %w", b, err)
		}
	}
	if g := d.String(KeyLogGroup); g != "" {
		exists, err := logGroupExists(ctx, l, g)
		if err != nil {
			return created, err
		}
		if !exists {
			if !opts.Create {
				return created, fmt.Errorf("%w: cloudWatchLogGroupName %q does not exist: create it, or pass --create-targets", ErrMissingTarget, g)
			}
			key := ""
			if d.Bool(KeyLogEncryption) {
				key = keyARN
			}
			if err := createLogGroup(ctx, l, g, key, opts.RetentionDays); err != nil {
				return created, err
			}
			created.LogGroup = g
		}
	}
	return created, nil
}

func createBucket(ctx context.Context, s S3API, name, keyARN string, encrypt bool, region string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := s.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("creating S3 bucket %s: %w", name, err)
	}
	rule := s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}
	if encrypt && keyARN != "" {
		rule = s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(keyARN)}
	}
	if _, err := s.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(name),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
			Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &rule, BucketKeyEnabled: aws.Bool(rule.KMSMasterKeyID != nil)}},
		},
	}); err != nil {
		return fmt.Errorf("setting default encryption on S3 bucket %s: %w", name, err)
	}
	if _, err := s.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(name),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("blocking public access to S3 bucket %s: %w", name, err)
	}
	return nil
}

func logGroupExists(ctx context.Context, l LogsAPI, name string) (bool, error) {
	in := &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(name)}
	pages := cloudwatchlogs.NewDescribeLogGroupsPaginator(l, in, func(o *cloudwatchlogs.DescribeLogGroupsPaginatorOptions) {
		o.StopOnDuplicateToken = true
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("checking log group %s: %w", name, err)
		}
		for _, g := range out.LogGroups {
			if aws.ToString(g.LogGroupName) == name {
				return true, nil
			}
		}
	}
	return false, nil
}

func createLogGroup(ctx context.Context, l LogsAPI, name, keyARN string, days int32) error {
	if days == 0 {
		days = DefaultRetentionDays
	}
	if !slices.Contains(RetentionDays(), days) {
		return fmt.Errorf("retention of %d days is not one CloudWatch Logs accepts (%v)", days, RetentionDays())
	}
	in := &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(name)}
	if keyARN != "" {
		in.KmsKeyId = aws.String(keyARN)
	}
	if _, err := l.CreateLogGroup(ctx, in); err != nil {
		return fmt.Errorf("creating log group %s: %w", name, err)
	}
	if _, err := l.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{
		LogGroupName: aws.String(name), RetentionInDays: aws.Int32(days),
	}); err != nil {
		return fmt.Errorf("setting retention on log group %s: %w", name, err)
	}
	return nil
}

// httpStatus returns the HTTP status of an AWS response error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
