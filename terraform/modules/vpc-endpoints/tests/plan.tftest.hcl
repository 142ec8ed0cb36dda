mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_vpc" {
    defaults = { cidr_block = "10.9.0.0/16" }
  }
}

variables {
  vpc_id     = "vpc-0123abcd"
  subnet_ids = ["subnet-a", "subnet-b"]
}

run "defaults_create_three_endpoints_and_vpc_cidr_ingress" {
  command = plan

  assert {
    condition     = length(aws_vpc_endpoint.this) == 3 && length(aws_vpc_endpoint.s3) == 0
    error_message = "Expected ssm, ssmmessages and ec2messages interface endpoints only."
  }
  assert {
    condition     = aws_vpc_endpoint.this["ssmmessages"].service_name == "com.amazonaws.eu-west-1.ssmmessages"
    error_message = "Service names must be built from the region."
  }
  assert {
    condition     = alltrue([for e in aws_vpc_endpoint.this : e.private_dns_enabled && e.vpc_endpoint_type == "Interface"])
    error_message = "Interface endpoints must have private DNS on."
  }
  assert {
    condition     = one([for i in aws_security_group.this[0].ingress : i.cidr_blocks]) == tolist(["10.9.0.0/16"])
    error_message = "Default ingress must be the VPC's CIDR block on 443."
  }
}

run "optional_endpoints_add_kms_logs_and_s3_gateway" {
  command = plan

  variables {
    enable_kms_endpoint        = true
    enable_logs_endpoint       = true
    enable_s3_gateway_endpoint = true
    route_table_ids            = ["rtb-1"]
    allowed_cidr_blocks        = ["10.1.0.0/24"]
    allowed_security_group_ids = ["sg-1"]
  }

  assert {
    condition     = length(aws_vpc_endpoint.this) == 5 && length(aws_vpc_endpoint.s3) == 1
    error_message = "Expected five interface endpoints and one s3 gateway endpoint."
  }
  assert {
    condition     = aws_vpc_endpoint.s3[0].vpc_endpoint_type == "Gateway"
    error_message = "The s3 endpoint must be a gateway endpoint."
  }
  assert {
    condition     = length(data.aws_vpc.this) == 0 && length(aws_security_group.this[0].ingress) == 2
    error_message = "Explicit CIDRs must replace the VPC lookup; security groups add a second rule."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(aws_vpc_endpoint.this) == 0 && length(aws_security_group.this) == 0 && length(data.aws_subnet.this) == 0
    error_message = "create = false must create nothing."
  }
}

run "s3_gateway_needs_route_tables" {
  command = plan

  variables {
    enable_s3_gateway_endpoint = true
  }

  expect_failures = [aws_vpc_endpoint.s3]
}

run "subnets_in_one_az_are_rejected" {
  command = plan

  override_data {
    target = data.aws_subnet.this
    values = { availability_zone = "eu-west-1a" }
  }

  expect_failures = [aws_vpc_endpoint.this]
}

run "rejects_duplicate_subnets" {
  command = plan

  variables {
    subnet_ids = ["subnet-a", "subnet-a"]
  }

  expect_failures = [var.subnet_ids]
}

run "rejects_empty_subnets" {
  command = plan

  variables {
    subnet_ids = []
  }

  expect_failures = [var.subnet_ids]
}

run "rejects_bad_cidr" {
  command = plan

  variables {
    allowed_cidr_blocks = ["10.0.0.0/33"]
  }

  expect_failures = [var.allowed_cidr_blocks]
}

run "rejects_bad_vpc_id" {
  command = plan

  variables {
    vpc_id = "my-vpc"
  }

  expect_failures = [var.vpc_id]
}
