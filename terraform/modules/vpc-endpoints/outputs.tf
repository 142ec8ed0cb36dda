output "endpoint_ids" {
  description = "Interface endpoint IDs by service short name (ssm, ssmmessages, ec2messages, and kms/logs when enabled)."
  value       = { for k, v in aws_vpc_endpoint.this : k => v.id }
}

output "dns_entries" {
  description = "DNS names of each interface endpoint by service short name."
  value       = { for k, v in aws_vpc_endpoint.this : k => [for e in v.dns_entry : e.dns_name] }
}

output "s3_gateway_endpoint_id" {
  description = "ID of the s3 gateway endpoint, or null when it is not created."
  value       = try(aws_vpc_endpoint.s3[0].id, null)
}

output "s3_gateway_prefix_list_id" {
  description = "Prefix list ID of the s3 gateway endpoint (for security group egress rules), or null when it is not created."
  value       = try(aws_vpc_endpoint.s3[0].prefix_list_id, null)
}

output "security_group_id" {
  description = "ID of the security group attached to the interface endpoints."
  value       = try(aws_security_group.this[0].id, null)
}
