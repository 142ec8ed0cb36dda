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
  # override_during = plan (Terraform 1.11+) makes these IDs known in plan runs.
  mock_resource "aws_kms_key" {
    override_during = plan
    defaults        = { arn = "arn:aws:kms:eu-west-1:111122223333:key/mock" }
  }
  mock_resource "aws_s3_bucket" {
    override_during = plan
    defaults        = { arn = "arn:aws:s3:::mock-bucket" }
  }
}

run "defaults_document_only" {
  command = plan

  assert {
    condition     = length(aws_ssm_document.this) == 1 && length(aws_s3_bucket.this) == 0 && length(aws_cloudwatch_log_group.this) == 0 && length(aws_kms_key.this) == 0
    error_message = "By default only the document is created."
  }
  assert {
    condition     = aws_ssm_document.this[0].name == "SSM-SessionManagerRunShell" && aws_ssm_document.this[0].document_type == "Session" && aws_ssm_document.this[0].document_format == "JSON"
    error_message = "The document must be the JSON Session document SSM-SessionManagerRunShell."
  }
  assert {
    condition = jsondecode(aws_ssm_document.this[0].content) == {
      schemaVersion = "1.0"
      description   = "Document to hold regional settings for Session Manager"
      sessionType   = "Standard_Stream"
      inputs = {
        s3BucketName                = ""
        s3KeyPrefix                 = ""
        s3EncryptionEnabled         = true
        cloudWatchLogGroupName      = ""
        cloudWatchEncryptionEnabled = true
        cloudWatchStreamingEnabled  = true
        kmsKeyId                    = ""
        runAsEnabled                = false
        runAsDefaultUser            = ""
        idleSessionTimeout          = "20"
        maxSessionDuration          = ""
        shellProfile                = { linux = "", windows = "" }
      }
    }
    error_message = "Default document content is wrong."
  }
}

run "all_inputs_reach_the_document" {
  command = plan

  variables {
    idle_session_timeout         = 15
    max_session_duration         = 120
    run_as_enabled               = true
    run_as_default_user          = "ec2-user"
    shell_profile_linux          = "exec bash -l"
    shell_profile_windows        = "date"
    s3_bucket_name               = "logs-bucket"
    s3_key_prefix                = "sessions/"
    cloudwatch_log_group_name    = "/ssmkit/sessions"
    cloudwatch_streaming_enabled = false
    kms_key_arn                  = "arn:aws:kms:eu-west-1:111122223333:key/given"
  }

  assert {
    condition = jsondecode(aws_ssm_document.this[0].content).inputs == {
      s3BucketName                = "logs-bucket"
      s3KeyPrefix                 = "sessions/"
      s3EncryptionEnabled         = true
      cloudWatchLogGroupName      = "/ssmkit/sessions"
      cloudWatchEncryptionEnabled = true
      cloudWatchStreamingEnabled  = false
      kmsKeyId                    = "arn:aws:kms:eu-west-1:111122223333:key/given"
      runAsEnabled                = true
      runAsDefaultUser            = "ec2-user"
      idleSessionTimeout          = "15"
      maxSessionDuration          = "120"
      shellProfile                = { linux = "exec bash -l", windows = "date" }
    }
    error_message = "Document inputs do not match the variables."
  }
  assert {
    condition     = length(aws_s3_bucket.this) == 0 && length(aws_cloudwatch_log_group.this) == 0
    error_message = "Given log targets must not be created."
  }
}

run "created_log_targets_and_key" {
  command = plan

  variables {
    create_s3_bucket              = true
    s3_bucket_name                = "logs-bucket"
    s3_key_prefix                 = "sessions/"
    s3_log_expiration_days        = 30
    create_cloudwatch_log_group   = true
    cloudwatch_log_group_name     = "/ssmkit/sessions"
    cloudwatch_log_retention_days = 90
    create_kms_key                = true
    kms_key_instance_role_arns    = ["arn:aws:iam::111122223333:role/instance"]
    kms_key_operator_arns         = ["arn:aws:iam::111122223333:role/operator"]
  }

  assert {
    condition     = length(aws_s3_bucket.this) == 1 && length(aws_s3_bucket_public_access_block.this) == 1 && length(aws_s3_bucket_policy.this) == 1 && length(aws_s3_bucket_lifecycle_configuration.this) == 1 && length(aws_s3_bucket_server_side_encryption_configuration.this) == 1
    error_message = "The bucket and its public access block, policy, lifecycle and encryption must be created."
  }
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "The bucket must use SSE-KMS."
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.this[0].block_public_acls && aws_s3_bucket_public_access_block.this[0].block_public_policy && aws_s3_bucket_public_access_block.this[0].ignore_public_acls && aws_s3_bucket_public_access_block.this[0].restrict_public_buckets
    error_message = "All public access must be blocked."
  }
  assert {
    condition     = jsondecode(aws_s3_bucket_policy.this[0].policy).Statement[0].Effect == "Deny" && jsondecode(aws_s3_bucket_policy.this[0].policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "The bucket policy must deny requests without TLS."
  }
  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this[0].rule).expiration[0].days == 30
    error_message = "Logs must expire after s3_log_expiration_days."
  }
  assert {
    condition     = aws_cloudwatch_log_group.this[0].retention_in_days == 90 && aws_cloudwatch_log_group.this[0].kms_key_id == "arn:aws:kms:eu-west-1:111122223333:key/mock"
    error_message = "The log group must have the retention and the created key."
  }
  assert {
    condition = {
      for s in jsondecode(aws_kms_key.this[0].policy).Statement : s.Sid => s.Principal
      } == {
      AccountAdministers                    = { AWS = "arn:aws:iam::111122223333:root" }
      InstancesEncryptSessionsAndLogs       = { AWS = ["arn:aws:iam::111122223333:role/instance"] }
      OperatorsStartEncryptedSessions       = { AWS = ["arn:aws:iam::111122223333:role/operator"] }
      CloudWatchLogsEncryptsSessionLogGroup = { Service = "logs.eu-west-1.amazonaws.com" }
    }
    error_message = "The key policy must name root, the instance roles, the operators and the regional logs service."
  }
  assert {
    condition     = [for s in jsondecode(aws_kms_key.this[0].policy).Statement : s.Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"] if s.Sid == "CloudWatchLogsEncryptsSessionLogGroup"] == ["arn:aws:logs:eu-west-1:111122223333:log-group:/ssmkit/sessions"]
    error_message = "The logs service must be limited to the session log group by encryption context."
  }
  assert {
    condition     = jsondecode(aws_ssm_document.this[0].content).inputs.kmsKeyId == "arn:aws:kms:eu-west-1:111122223333:key/mock"
    error_message = "The document must use the created key."
  }
}

run "create_false_creates_nothing" {
  command = plan

  variables {
    create                      = false
    create_s3_bucket            = true
    s3_bucket_name              = "logs-bucket"
    create_cloudwatch_log_group = true
    cloudwatch_log_group_name   = "/ssmkit/sessions"
    create_kms_key              = true
  }

  assert {
    condition     = length(aws_ssm_document.this) == 0 && length(aws_s3_bucket.this) == 0 && length(aws_cloudwatch_log_group.this) == 0 && length(aws_kms_key.this) == 0
    error_message = "create = false must create nothing."
  }
}

run "rejects_idle_timeout_zero" {
  command = plan
  variables {
    idle_session_timeout = 0
  }
  expect_failures = [var.idle_session_timeout]
}

run "rejects_idle_timeout_61" {
  command = plan
  variables {
    idle_session_timeout = 61
  }
  expect_failures = [var.idle_session_timeout]
}

run "rejects_fractional_idle_timeout" {
  command = plan
  variables {
    idle_session_timeout = 1.5
  }
  expect_failures = [var.idle_session_timeout]
}

run "rejects_max_duration_1441" {
  command = plan
  variables {
    max_session_duration = 1441
  }
  expect_failures = [var.max_session_duration]
}

run "rejects_max_duration_zero" {
  command = plan
  variables {
    max_session_duration = 0
  }
  expect_failures = [var.max_session_duration]
}

run "rejects_root_run_as" {
  command = plan
  variables {
    run_as_enabled      = true
    run_as_default_user = "root"
  }
  expect_failures = [var.run_as_default_user]
}

run "rejects_reserved_document_name" {
  command = plan
  variables {
    document_name = "AWS-MyPrefs"
  }
  expect_failures = [var.document_name]
}

run "rejects_bad_retention" {
  command = plan
  variables {
    cloudwatch_log_retention_days = 42
  }
  expect_failures = [var.cloudwatch_log_retention_days]
}

run "rejects_short_kms_deletion_window" {
  command = plan
  variables {
    kms_key_deletion_window_days = 6
  }
  expect_failures = [var.kms_key_deletion_window_days]
}

run "rejects_non_arn_kms_key" {
  command = plan
  variables {
    kms_key_arn = "alias/sessions"
  }
  expect_failures = [var.kms_key_arn]
}

run "rejects_bad_bucket_name" {
  command = plan
  variables {
    s3_bucket_name = "Bad_Bucket"
  }
  expect_failures = [var.s3_bucket_name]
}

run "rejects_log_expiry_zero" {
  command = plan
  variables {
    s3_log_expiration_days = 0
  }
  expect_failures = [var.s3_log_expiration_days]
}

run "precondition_bucket_needs_name" {
  command = plan
  variables {
    create_s3_bucket = true
  }
  expect_failures = [aws_ssm_document.this]
}

run "precondition_log_group_needs_name" {
  command = plan
  variables {
    create_cloudwatch_log_group = true
  }
  expect_failures = [aws_ssm_document.this]
}

run "precondition_key_created_or_given_not_both" {
  command = plan
  variables {
    create_kms_key = true
    kms_key_arn    = "arn:aws:kms:eu-west-1:111122223333:key/given"
  }
  expect_failures = [aws_ssm_document.this]
}

run "precondition_run_as_needs_user" {
  command = plan
  variables {
    run_as_enabled = true
  }
  expect_failures = [aws_ssm_document.this]
}

run "precondition_encrypted_log_group_needs_key" {
  command = plan
  variables {
    create_cloudwatch_log_group = true
    cloudwatch_log_group_name   = "/ssmkit/sessions"
  }
  expect_failures = [aws_ssm_document.this]
}

run "precondition_key_principals_need_created_key" {
  command = plan
  variables {
    kms_key_operator_arns = ["arn:aws:iam::111122223333:role/operator"]
  }
  expect_failures = [aws_ssm_document.this]
}
