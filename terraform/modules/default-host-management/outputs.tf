output "role_name" {
  description = "Name of the Default Host Management role."
  value       = try(aws_iam_role.this[0].name, null)
}

output "role_arn" {
  description = "ARN of the Default Host Management role."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "service_setting_id" {
  description = "ARN of the default-ec2-instance-management-role service setting, or null when it is not managed here."
  value       = try(aws_ssm_service_setting.this[0].setting_id, null)
}

output "service_setting_value" {
  description = "Value written to the service setting (role path and name), or null when it is not managed here."
  value       = try(aws_ssm_service_setting.this[0].setting_value, null)
}
