provider "aws" {
  region = var.region

  # Emulators accept any credentials and have no account lookup or instance metadata.
  skip_credentials_validation = var.aws_endpoint_url != null
  skip_requesting_account_id  = var.aws_endpoint_url != null
  skip_metadata_api_check     = var.aws_endpoint_url != null
  s3_use_path_style           = var.aws_endpoint_url != null

  dynamic "endpoints" {
    for_each = var.aws_endpoint_url == null ? [] : [var.aws_endpoint_url]
    content {
      ec2  = endpoints.value
      iam  = endpoints.value
      kms  = endpoints.value
      logs = endpoints.value
      s3   = endpoints.value
      ssm  = endpoints.value
      sts  = endpoints.value
    }
  }

  default_tags {
    tags = merge(var.tags, { "ssmkit:example" = "private-instance" })
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  azs            = slice(data.aws_availability_zones.available.names, 0, 2)
  bucket_name    = "${var.name}-session-logs-${data.aws_caller_identity.current.account_id}"
  log_group_name = "/ssmkit/${var.name}/sessions"
  access_tag_key = "ssmkit:access"
}

################################################################################
# Network: private subnets only, no internet or NAT gateway
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # private DNS of interface endpoints needs both

  tags = { Name = var.name }
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)

  tags = { Name = "${var.name}-private-${local.azs[count.index]}" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-private" }
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_security_group" "instance" {
  name_prefix = "${var.name}-instance-"
  description = "ssmkit example instance: HTTPS out to the VPC endpoints only"
  vpc_id      = aws_vpc.this.id

  egress {
    description = "HTTPS to the interface endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description     = "HTTPS to S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [module.endpoints.s3_gateway_prefix_list_id]
  }

  tags = { Name = "${var.name}-instance" }
}

module "endpoints" {
  source = "../../modules/vpc-endpoints"

  name                       = var.name
  vpc_id                     = aws_vpc.this.id
  subnet_ids                 = aws_subnet.private[*].id
  enable_kms_endpoint        = true
  enable_logs_endpoint       = true
  enable_s3_gateway_endpoint = true
  route_table_ids            = [aws_route_table.private.id]
  allowed_cidr_blocks        = null
  allowed_security_group_ids = [aws_security_group.instance.id]
}

################################################################################
# Instance
################################################################################

module "instance_role" {
  source = "../../modules/instance-role"

  name                              = "${var.name}-instance"
  logging_s3_bucket_name            = local.bucket_name
  logging_s3_key_prefix             = "sessions/"
  logging_cloudwatch_log_group_name = local.log_group_name
  logging_kms_key_arns              = [module.preferences.kms_key_arn]
}

resource "aws_instance" "this" {
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = aws_subnet.private[0].id
  vpc_security_group_ids = [aws_security_group.instance.id]
  iam_instance_profile   = module.instance_role.instance_profile_name

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted   = true
    volume_size = var.root_volume_size
  }

  tags = {
    Name                   = var.name
    (local.access_tag_key) = "true"
  }

  # The agent registers only once it can reach ssm, ssmmessages and ec2messages.
  depends_on = [module.endpoints]
}

################################################################################
# Session Manager preferences, log targets and operator access
################################################################################

module "preferences" {
  source = "../../modules/session-preferences"

  idle_session_timeout = 20
  max_session_duration = 480

  create_s3_bucket       = true
  s3_bucket_name         = local.bucket_name
  s3_key_prefix          = "sessions/"
  s3_force_destroy       = var.force_destroy_logs
  s3_log_expiration_days = 365

  create_cloudwatch_log_group   = true
  cloudwatch_log_group_name     = local.log_group_name
  cloudwatch_log_retention_days = 90

  create_kms_key             = true
  kms_key_instance_role_arns = [module.instance_role.role_arn]
  kms_key_operator_arns      = [aws_iam_role.operator.arn]
}

resource "aws_iam_role" "operator" {
  name        = "${var.name}-operator"
  description = "Operators who open Session Manager sessions on the example instance"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Principal = {
        AWS = length(var.operator_principal_arns) > 0 ? var.operator_principal_arns : ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
      }
      Action = "sts:AssumeRole"
    }]
  })
}

module "user_access" {
  source = "../../modules/user-access"

  name                  = "${var.name}-operators"
  target_tag_key        = local.access_tag_key
  target_tag_values     = ["true"]
  allow_shell           = true
  allow_port_forwarding = true
  kms_key_arns          = [module.preferences.kms_key_arn]
  role_names            = [aws_iam_role.operator.name]
}
