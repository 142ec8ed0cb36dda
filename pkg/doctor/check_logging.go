package doctor

import (
	"fmt"
	"strings"

	policy "github.com/ssmkit/ssmkit/pkg/iampolicy"
)

func (t *target) loggingS3() Check {
	b := t.f.Bucket
	switch {
	case b == nil:
		return skip("S3 session logging is off")
	case b.Err != nil:
		return skip("cannot read bucket %s: %s", b.Name, shortErr(b.Err))
	case !b.Exists:
		args := []string{"aws", "s3api", "create-bucket", "--bucket", b.Name}
		if t.f.Region != "us-east-1" {
			args = append(args, "--create-bucket-configuration", "LocationConstraint="+t.f.Region)
		}
		return failf("", "logging bucket %s does not exist: sessions fail to start", b.Name).
			run("Terraform: terraform/modules/session-preferences create_s3_bucket = true", cmd(args...))
	}
	return pass("logging bucket " + b.Name + " exists")
}

func (t *target) loggingS3Encryption() Check {
	b, p := t.f.Bucket, t.prefs()
	switch {
	case b == nil || !p.S3Encryption:
		return skip("S3 log encryption is not required")
	case b.Err != nil || !b.Exists:
		return skip("the bucket is missing or unreadable (see logging.s3-bucket)")
	case b.EncryptionErr != nil:
		return skip("cannot read the encryption of %s: %s", b.Name, shortErr(b.EncryptionErr))
	case !b.Encrypted:
		return failf("", "s3EncryptionEnabled is true but bucket %s has no default encryption: sessions fail to start", b.Name).
			run("", cmd("aws", "s3api", "put-bucket-encryption", "--bucket", b.Name, "--server-side-encryption-configuration",
				jsonArg(map[string]any{"Rules": []map[string]any{{"ApplyServerSideEncryptionByDefault": map[string]string{"SSEAlgorithm": "AES256"}}}})))
	}
	return pass("bucket " + b.Name + " is encrypted by default")
}

func (t *target) loggingCW() Check {
	g := t.f.LogGroup
	switch {
	case g == nil:
		return skip("CloudWatch session logging is off")
	case g.Err != nil:
		return skip("cannot read log group %s: %s", g.Name, shortErr(g.Err))
	case !g.Exists:
		return failf("", "log group %s does not exist: sessions fail to start", g.Name).
			run("Terraform: terraform/modules/session-preferences create_cloudwatch_log_group = true", cmd("aws", "logs", "create-log-group", "--log-group-name", g.Name))
	}
	return pass("log group " + g.Name + " exists")
}

func (t *target) loggingCWEncryption() Check {
	g, p := t.f.LogGroup, t.prefs()
	switch {
	case g == nil || !p.CWEncryption:
		return skip("CloudWatch log encryption is not required")
	case g.Err != nil || !g.Exists:
		return skip("the log group is missing or unreadable (see logging.cw-log-group)")
	case g.KMSKeyID == "":
		c := failf("", "cloudWatchEncryptionEnabled is true but log group %s is not encrypted: sessions fail to start", g.Name)
		if k := t.f.Key; k != nil && k.ARN != "" && k.Enabled {
			// The preferences' own key; its policy must let CloudWatch
			// Logs use it, as the session-preferences module's does.
			return c.run("Terraform: terraform/modules/session-preferences kms_key_arn",
				cmd("aws", "logs", "associate-kms-key", "--log-group-name", g.Name, "--kms-key-id", k.ARN))
		}
		return c.run(fmt.Sprintf("associate a KMS key whose policy lets CloudWatch Logs use it: `aws logs associate-kms-key --log-group-name %s --kms-key-id KEY_ARN`, "+
			"or Terraform: terraform/modules/session-preferences kms_key_arn", g.Name))
	}
	return pass("log group "+g.Name+" is encrypted", "kmsKeyId="+g.KMSKeyID)
}

func (t *target) loggingRoleAccess() Check {
	p := t.prefs()
	if p.S3Bucket == "" && p.LogGroup == "" && p.KMSKeyID == "" {
		return skip("session logging and KMS encryption are off")
	}
	if t.role == nil {
		return skip("no role to check")
	}
	if t.role.Err != nil {
		return skip("cannot read the policies of role %s: %s", t.role.Name, shortErr(t.role.Err))
	}
	f := t.f
	var reqs [][2]string
	var vars, actions, resources []string
	if p.S3Bucket != "" {
		obj := fmt.Sprintf("arn:%s:s3:::%s/%s*", f.Partition, p.S3Bucket, p.S3Prefix)
		reqs = append(reqs, [2]string{"s3:PutObject", strings.TrimSuffix(obj, "*") + "session.log"},
			[2]string{"s3:GetEncryptionConfiguration", fmt.Sprintf("arn:%s:s3:::%s", f.Partition, p.S3Bucket)})
		vars = append(vars, fmt.Sprintf("logging_s3_bucket_name = %q", p.S3Bucket))
	}
	if p.LogGroup != "" {
		lg := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", f.Partition, f.Region, f.Account, p.LogGroup)
		reqs = append(reqs, [2]string{"logs:CreateLogStream", lg + ":*"}, [2]string{"logs:PutLogEvents", lg + ":log-stream:x"},
			// DescribeLogGroups is authorized on the account's log groups as a
			// whole (log-group:*), not on one group and not on "*".
			[2]string{"logs:DescribeLogGroups", fmt.Sprintf("arn:%s:logs:%s:%s:log-group:*", f.Partition, f.Region, f.Account)},
			[2]string{"logs:DescribeLogStreams", lg + ":*"})
		vars = append(vars, fmt.Sprintf("logging_cloudwatch_log_group_name = %q", p.LogGroup))
	}
	if p.KMSKeyID != "" {
		key := p.KMSKeyID
		if t.f.Key != nil && t.f.Key.ARN != "" {
			key = t.f.Key.ARN
		}
		reqs = append(reqs, [2]string{"kms:Decrypt", key})
		vars = append(vars, fmt.Sprintf("logging_kms_key_arns = [%q]", key))
	}
	var bad, cond []string
	for _, rq := range reqs {
		switch r := policy.Evaluate(t.role.Policies, policy.Request{Action: rq[0], Resource: rq[1]}); r.Decision {
		case policy.Allowed:
		case policy.Conditional:
			cond = append(cond, rq[0])
		default:
			bad = append(bad, rq[0]+" on "+rq[1])
		}
		actions = append(actions, rq[0])
		resources = append(resources, loggingResource(rq[1]))
	}
	fix := "Terraform: terraform/modules/instance-role with " + strings.Join(vars, ", ")
	put := cmd("aws", "iam", "put-role-policy", "--role-name", t.role.Name, "--policy-name", LoggingPolicyName, "--policy-document",
		jsonArg(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{"Effect": "Allow", "Action": uniq(actions), "Resource": uniq(resources)}}}))
	if len(bad) > 0 {
		return failf("", "role %s may not %s", t.role.Name, strings.Join(bad, ", ")).run(fix, put)
	}
	if len(cond) > 0 {
		return warnf("", "role %s may %s only under conditions", t.role.Name, strings.Join(cond, ", ")).run(fix, put)
	}
	return pass(fmt.Sprintf("role %s may write the session logs and use the key", t.role.Name))
}

// LoggingPolicyName is the inline policy the doctor's fix gives a role
// that may not write session logs.
const LoggingPolicyName = "ssmkit-session-logging"

// loggingResource widens a sample resource of a logging request to what a
// policy should grant: every object under the prefix, every stream of
// the group.
func loggingResource(r string) string {
	switch {
	case strings.HasSuffix(r, "session.log"):
		return strings.TrimSuffix(r, "session.log") + "*"
	case strings.HasSuffix(r, ":log-stream:x"):
		return strings.TrimSuffix(r, "x") + "*"
	}
	return r
}
