mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }
}

run "defaults_role_policy_and_setting" {
  command = plan

  assert {
    condition     = length(aws_iam_role.this) == 1 && length(aws_ssm_service_setting.this) == 1
    error_message = "Expected the role and the service setting."
  }
  assert {
    condition     = jsondecode(aws_iam_role.this[0].assume_role_policy).Statement[0].Principal.Service == "ssm.amazonaws.com"
    error_message = "The role must be trusted by ssm.amazonaws.com."
  }
  assert {
    condition     = aws_iam_role_policy_attachment.this[0].policy_arn == "arn:aws:iam::aws:policy/AmazonSSMManagedEC2InstanceDefaultPolicy"
    error_message = "AmazonSSMManagedEC2InstanceDefaultPolicy must be attached."
  }
  assert {
    condition     = aws_ssm_service_setting.this[0].setting_id == "arn:aws:ssm:eu-west-1:111122223333:servicesetting/ssm/managed-instance/default-ec2-instance-management-role"
    error_message = "Wrong service setting ID."
  }
  assert {
    condition     = aws_ssm_service_setting.this[0].setting_value == "service-role/AWSSystemsManagerDefaultEC2InstanceManagementRole"
    error_message = "The setting value must be the role path without the leading slash, then the name."
  }
}

run "root_path_setting_value_is_the_name" {
  command = plan

  variables {
    role_name = "dhmc"
    role_path = "/"
  }

  assert {
    condition     = aws_ssm_service_setting.this[0].setting_value == "dhmc"
    error_message = "With path / the setting value is the bare role name."
  }
}

run "role_only" {
  command = plan

  variables {
    create_service_setting = false
  }

  assert {
    condition     = length(aws_iam_role.this) == 1 && length(aws_ssm_service_setting.this) == 0
    error_message = "create_service_setting = false must keep the role and drop the setting."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create = false
  }

  assert {
    condition     = length(aws_iam_role.this) == 0 && length(aws_iam_role_policy_attachment.this) == 0 && length(aws_ssm_service_setting.this) == 0
    error_message = "create = false must create nothing."
  }
}

run "rejects_bad_role_name" {
  command = plan

  variables {
    role_name = "no spaces allowed"
  }

  expect_failures = [var.role_name]
}

run "rejects_bad_role_path" {
  command = plan

  variables {
    role_path = "service-role"
  }

  expect_failures = [var.role_path]
}
