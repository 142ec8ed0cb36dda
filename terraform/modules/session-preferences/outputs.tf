output "document_name" {
  description = "Name of the Session preferences document."
  value       = try(aws_ssm_document.this[0].name, null)
}

output "document_arn" {
  description = "ARN of the Session preferences document."
  value       = try(aws_ssm_document.this[0].arn, null)
}

output "document_content" {
  description = "JSON content of the preferences document, as ssmkit prefs show --json prints its inputs."
  value       = var.create ? jsonencode(local.document) : null
}

output "s3_bucket_name" {
  description = "Name of the session log bucket (created or given), or null when S3 logging is off."
  value       = var.create ? try(aws_s3_bucket.this[0].id, var.s3_bucket_name) : null
}

output "s3_bucket_arn" {
  description = "ARN of the created session log bucket, or null when it is not created here."
  value       = try(aws_s3_bucket.this[0].arn, null)
}

output "cloudwatch_log_group_name" {
  description = "Name of the session log group (created or given), or null when CloudWatch logging is off."
  value       = var.create ? try(aws_cloudwatch_log_group.this[0].name, var.cloudwatch_log_group_name) : null
}

output "cloudwatch_log_group_arn" {
  description = "ARN of the created session log group, or null when it is not created here."
  value       = try(aws_cloudwatch_log_group.this[0].arn, null)
}

output "kms_key_arn" {
  description = "ARN of the session KMS key (created or given), or null when there is none."
  value       = var.create ? local.kms_key_arn : null
}

output "kms_key_id" {
  description = "ID of the created KMS key, or null when it is not created here."
  value       = try(aws_kms_key.this[0].key_id, null)
}
