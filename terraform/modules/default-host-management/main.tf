data "aws_partition" "current" {
  count = var.create ? 1 : 0
}

data "aws_region" "current" {
  count = var.create && var.create_service_setting ? 1 : 0
}

data "aws_caller_identity" "current" {
  count = var.create && var.create_service_setting ? 1 : 0
}

locals {
  partition = try(data.aws_partition.current[0].partition, "aws")

  # The service setting holds the role as "<path without leading slash><name>",
  # for example service-role/AWSSystemsManagerDefaultEC2InstanceManagementRole.
  setting_value = "${trimprefix(var.role_path, "/")}${var.role_name}"

  setting_id = "arn:${local.partition}:ssm:${try(data.aws_region.current[0].name, "")}:${try(data.aws_caller_identity.current[0].account_id, "")}:servicesetting/ssm/managed-instance/default-ec2-instance-management-role"
}

resource "aws_iam_role" "this" {
  count = var.create ? 1 : 0

  name                 = var.role_name
  path                 = var.role_path
  description          = "Default Host Management Configuration: lets Systems Manager manage every EC2 instance in the region"
  permissions_boundary = var.permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "SSMAssumeRole"
      Effect    = "Allow"
      Principal = { Service = "ssm.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  count = var.create ? 1 : 0

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedEC2InstanceDefaultPolicy"
}

resource "aws_ssm_service_setting" "this" {
  count = var.create && var.create_service_setting ? 1 : 0

  setting_id    = local.setting_id
  setting_value = local.setting_value

  # The setting must not name a role that cannot yet be assumed with its policy.
  depends_on = [aws_iam_role_policy_attachment.this]
}
