output "role_name" {
  description = "Name of the IAM role."
  value       = try(aws_iam_role.this[0].name, null)
}

output "role_arn" {
  description = "ARN of the IAM role."
  value       = try(aws_iam_role.this[0].arn, null)
}

output "instance_profile_name" {
  description = "Name of the instance profile to set on aws_instance.iam_instance_profile."
  value       = try(aws_iam_instance_profile.this[0].name, null)
}

output "instance_profile_arn" {
  description = "ARN of the instance profile."
  value       = try(aws_iam_instance_profile.this[0].arn, null)
}

output "logging_policy_json" {
  description = "JSON of the inline logging policy, or null when no logging target was given."
  value       = try(aws_iam_role_policy.logging[0].policy, null)
}
