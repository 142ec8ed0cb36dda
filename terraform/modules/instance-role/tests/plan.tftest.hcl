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

variables {
  name = "test-instance"
}

run "defaults_role_profile_and_core_policy_only" {
  command = plan

  assert {
    condition     = length(aws_iam_role.this) == 1 && length(aws_iam_instance_profile.this) == 1
    error_message = "Expected one role and one instance profile."
  }
  assert {
    condition     = [for a in aws_iam_role_policy_attachment.this : a.policy_arn] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    error_message = "Only AmazonSSMManagedInstanceCore must be attached by default."
  }
  assert {
    condition     = jsondecode(aws_iam_role.this[0].assume_role_policy).Statement[0].Principal.Service == "ec2.amazonaws.com"
    error_message = "The role must be trusted by ec2.amazonaws.com."
  }
  assert {
    condition     = length(aws_iam_role_policy.logging) == 0
    error_message = "No logging policy without logging targets."
  }
}

run "logging_targets_grant_least_privilege" {
  command = plan

  variables {
    logging_s3_bucket_name            = "logs-bucket"
    logging_s3_key_prefix             = "sessions/"
    logging_cloudwatch_log_group_name = "/ssmkit/sessions"
    logging_kms_key_arns              = ["arn:aws:kms:eu-west-1:111122223333:key/abc"]
  }

  assert {
    condition     = length(aws_iam_role_policy.logging) == 1
    error_message = "Logging targets must add the logging policy."
  }
  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.logging[0].policy).Statement : s.Sid => s.Resource
      } == {
      SessionLogsToS3                 = ["arn:aws:s3:::logs-bucket/sessions/*"]
      CheckSessionLogBucketEncryption = ["arn:aws:s3:::logs-bucket"]
      SessionLogsToCloudWatch = [
        "arn:aws:logs:eu-west-1:111122223333:log-group:/ssmkit/sessions",
        "arn:aws:logs:eu-west-1:111122223333:log-group:/ssmkit/sessions:*",
      ]
      FindSessionLogGroup = ["arn:aws:logs:eu-west-1:111122223333:log-group:*"]
      SessionEncryption   = ["arn:aws:kms:eu-west-1:111122223333:key/abc"]
    }
    error_message = "Logging statements must be scoped to the bucket prefix, the log group and the key."
  }
}

run "kms_only_grants_only_kms" {
  command = plan

  variables {
    logging_kms_key_arns = ["arn:aws:kms:eu-west-1:111122223333:key/abc"]
  }

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.logging[0].policy).Statement : s.Sid] == ["SessionEncryption"]
    error_message = "Only the KMS statement is expected."
  }
}

run "additional_policies_are_attached" {
  command = plan

  variables {
    additional_policy_arns = ["arn:aws:iam::111122223333:policy/extra"]
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.this) == 2
    error_message = "Additional policies must be attached besides the core policy."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create                 = false
    logging_s3_bucket_name = "logs-bucket"
  }

  assert {
    condition     = length(aws_iam_role.this) == 0 && length(aws_iam_role_policy.logging) == 0 && length(aws_iam_role_policy_attachment.this) == 0
    error_message = "create = false must create nothing."
  }
}

run "prefix_without_bucket_is_rejected" {
  command = plan

  variables {
    logging_s3_key_prefix = "sessions/"
  }

  expect_failures = [aws_iam_role.this]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "has spaces"
  }

  expect_failures = [var.name]
}

run "rejects_bad_bucket_name" {
  command = plan

  variables {
    logging_s3_bucket_name = "Upper_Case"
  }

  expect_failures = [var.logging_s3_bucket_name]
}

run "rejects_leading_slash_prefix" {
  command = plan

  variables {
    logging_s3_bucket_name = "logs-bucket"
    logging_s3_key_prefix  = "/sessions"
  }

  expect_failures = [var.logging_s3_key_prefix]
}

run "rejects_non_arn_kms_key" {
  command = plan

  variables {
    logging_kms_key_arns = ["alias/sessions"]
  }

  expect_failures = [var.logging_kms_key_arns]
}

run "rejects_bad_path" {
  command = plan

  variables {
    path = "ssmkit"
  }

  expect_failures = [var.path]
}
