output "policy_arn" {
  description = "ARN of the operator policy."
  value       = try(aws_iam_policy.this[0].arn, null)
}

output "policy_name" {
  description = "Name of the operator policy."
  value       = try(aws_iam_policy.this[0].name, null)
}

output "policy_json" {
  description = "JSON document of the operator policy."
  value       = var.create ? local.policy_json : null
}
