package doctor

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

func (g *Gatherer) prefs(ctx context.Context) *Prefs {
	out, err := g.Clients.SSM.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String(g.Document)})
	if err != nil {
		var nf *ssmtypes.InvalidDocument
		if errors.As(err, &nf) || apiCode(err) == "InvalidDocument" {
			return &Prefs{Document: g.Document}
		}
		return &Prefs{Document: g.Document, Err: fmt.Errorf("ssm GetDocument %s: %w", g.Document, err)}
	}
	return ParsePrefs(g.Document, aws.ToString(out.Content))
}

// logging reads the bucket, log group and key the preferences name. It
// needs Prefs, which phase 1 read.
func (g *Gatherer) logging(r *phase, f *Facts) {
	p := f.Prefs
	if p == nil || p.Err != nil {
		return
	}
	if p.S3Bucket != "" {
		f.Bucket = &Bucket{Name: p.S3Bucket}
		r.Go(func(ctx context.Context) {
			b := f.Bucket
			if _, err := g.Clients.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name)}); err != nil {
				if code := apiCode(err); code == "NotFound" || code == "NoSuchBucket" {
					return
				}
				b.Err = fmt.Errorf("s3 HeadBucket %s: %w", b.Name, err)
				return
			}
			b.Exists = true
			_, err := g.Clients.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(b.Name)})
			switch {
			case err == nil:
				b.Encrypted = true
			case apiCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
			default:
				b.EncryptionErr = fmt.Errorf("s3 GetBucketEncryption %s: %w", b.Name, err)
			}
		})
	}
	if p.LogGroup != "" {
		f.LogGroup = &LogGroup{Name: p.LogGroup}
		r.Go(func(ctx context.Context) {
			lg := f.LogGroup
			out, err := g.Clients.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(lg.Name), Limit: aws.Int32(50)})
			if err != nil {
				lg.Err = fmt.Errorf("logs DescribeLogGroups %s: %w", lg.Name, err)
				return
			}
			for _, x := range out.LogGroups {
				if aws.ToString(x.LogGroupName) == lg.Name {
					lg.Exists, lg.KMSKeyID = true, aws.ToString(x.KmsKeyId)
				}
			}
		})
	}
	if p.KMSKeyID != "" {
		f.Key = &Key{ID: p.KMSKeyID}
		r.Go(func(ctx context.Context) {
			k := f.Key
			out, err := g.Clients.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.ID)})
			if err != nil {
				if apiCode(err) == "NotFoundException" {
					return
				}
				k.Err = fmt.Errorf("kms DescribeKey %s: %w", k.ID, err)
				return
			}
			k.Exists, k.ARN, k.KeyID, k.Enabled, k.State = true, aws.ToString(out.KeyMetadata.Arn), aws.ToString(out.KeyMetadata.KeyId), out.KeyMetadata.Enabled, string(out.KeyMetadata.KeyState)
			pol, err := g.Clients.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: out.KeyMetadata.KeyId, PolicyName: aws.String("default")})
			if err != nil {
				k.PolicyErr = fmt.Errorf("kms GetKeyPolicy: %w", err)
				return
			}
			if d, err := policy.Parse("key policy", aws.ToString(pol.Policy)); err != nil {
				k.PolicyErr = err
			} else {
				k.Policy = &d
			}
		})
	}
}
