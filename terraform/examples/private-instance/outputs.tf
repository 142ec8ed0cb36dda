output "ssmkit_start_command" {
  description = "Command that opens a shell on the instance."
  value       = "ssmkit start ${aws_instance.this.id}"
}

output "instance_id" {
  description = "ID of the private instance."
  value       = aws_instance.this.id
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "IDs of the two private subnets."
  value       = aws_subnet.private[*].id
}

output "vpc_endpoint_ids" {
  description = "Interface endpoint IDs by service."
  value       = module.endpoints.endpoint_ids
}

output "instance_role_name" {
  description = "Name of the instance's IAM role."
  value       = module.instance_role.role_name
}

output "operator_role_arn" {
  description = "ARN of the role operators assume to open sessions."
  value       = aws_iam_role.operator.arn
}

output "operator_policy_arn" {
  description = "ARN of the operator policy attached to the operator role."
  value       = module.user_access.policy_arn
}

output "preferences_document_name" {
  description = "Name of the Session preferences document."
  value       = module.preferences.document_name
}

output "session_logs_bucket" {
  description = "Bucket that session logs go to."
  value       = module.preferences.s3_bucket_name
}

output "session_log_group" {
  description = "CloudWatch log group that session output streams to."
  value       = module.preferences.cloudwatch_log_group_name
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts sessions and their logs."
  value       = module.preferences.kms_key_arn
}
