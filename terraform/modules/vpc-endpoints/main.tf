data "aws_region" "current" {
  count = var.create ? 1 : 0
}

# Only needed for the default ingress rule: the VPC's own CIDR block.
data "aws_vpc" "this" {
  count = var.create && var.allowed_cidr_blocks == null ? 1 : 0

  id = var.vpc_id
}

# Read every subnet to check the one-subnet-per-AZ rule before AWS rejects the
# endpoint with DuplicateSubnetsInSameZone. count, not for_each: subnet IDs are
# often unknown until apply.
data "aws_subnet" "this" {
  count = var.create ? length(var.subnet_ids) : 0

  id = var.subnet_ids[count.index]
}

locals {
  region = try(data.aws_region.current[0].name, "")

  # The three services the SSM agent and Session Manager need, plus the optional ones.
  interface_services = concat(
    ["ssm", "ssmmessages", "ec2messages"],
    var.enable_kms_endpoint ? ["kms"] : [],
    var.enable_logs_endpoint ? ["logs"] : [],
  )

  allowed_cidr_blocks = var.allowed_cidr_blocks != null ? var.allowed_cidr_blocks : try([data.aws_vpc.this[0].cidr_block], [])

  subnet_azs = [for s in data.aws_subnet.this : s.availability_zone]
}

resource "aws_security_group" "this" {
  count = var.create ? 1 : 0

  name_prefix = "${var.name}-vpce-"
  description = "HTTPS to the Session Manager VPC endpoints"
  vpc_id      = var.vpc_id

  dynamic "ingress" {
    for_each = length(local.allowed_cidr_blocks) > 0 ? [1] : []
    content {
      description = "HTTPS from allowed CIDR blocks"
      from_port   = 443
      to_port     = 443
      protocol    = "tcp"
      cidr_blocks = local.allowed_cidr_blocks
    }
  }

  dynamic "ingress" {
    for_each = length(var.allowed_security_group_ids) > 0 ? [1] : []
    content {
      description     = "HTTPS from allowed security groups"
      from_port       = 443
      to_port         = 443
      protocol        = "tcp"
      security_groups = var.allowed_security_group_ids
    }
  }

  # No egress block: endpoints only answer, so Terraform removes the default allow-all egress.

  tags = merge(var.tags, { Name = "${var.name}-vpce" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_endpoint" "this" {
  for_each = var.create ? toset(local.interface_services) : toset([])

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.this[0].id]

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    precondition {
      condition     = length(distinct(local.subnet_azs)) == length(local.subnet_azs)
      error_message = "The subnet_ids must be in distinct availability zones (an interface endpoint takes one subnet per AZ); got AZs: ${join(", ", local.subnet_azs)}."
    }
  }
}

resource "aws_vpc_endpoint" "s3" {
  count = var.create && var.enable_s3_gateway_endpoint ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids

  tags = merge(var.tags, { Name = "${var.name}-s3" })

  lifecycle {
    precondition {
      condition     = length(var.route_table_ids) > 0
      error_message = "The s3 gateway endpoint needs at least one route table: set route_table_ids when enable_s3_gateway_endpoint is true."
    }
  }
}
