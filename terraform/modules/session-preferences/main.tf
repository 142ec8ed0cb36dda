data "aws_partition" "current" {
  count = var.create && var.create_kms_key ? 1 : 0
}

data "aws_region" "current" {
  count = var.create && var.create_kms_key ? 1 : 0
}

data "aws_caller_identity" "current" {
  count = var.create && var.create_kms_key ? 1 : 0
}

locals {
  partition  = try(data.aws_partition.current[0].partition, "aws")
  region     = try(data.aws_region.current[0].name, "")
  account_id = try(data.aws_caller_identity.current[0].account_id, "")

  kms_key_arn = var.create_kms_key ? try(aws_kms_key.this[0].arn, null) : var.kms_key_arn

  # The exact shape Session Manager writes when the preferences page is saved.
  document = {
    schemaVersion = "1.0"
    description   = "Document to hold regional settings for Session Manager"
    sessionType   = "Standard_Stream"
    inputs = {
      s3BucketName                = var.s3_bucket_name == null ? "" : var.s3_bucket_name
      s3KeyPrefix                 = var.s3_key_prefix
      s3EncryptionEnabled         = var.s3_encryption_enabled
      cloudWatchLogGroupName      = var.cloudwatch_log_group_name == null ? "" : var.cloudwatch_log_group_name
      cloudWatchEncryptionEnabled = var.cloudwatch_encryption_enabled
      cloudWatchStreamingEnabled  = var.cloudwatch_streaming_enabled
      kmsKeyId                    = local.kms_key_arn == null ? "" : local.kms_key_arn
      runAsEnabled                = var.run_as_enabled
      runAsDefaultUser            = var.run_as_default_user
      idleSessionTimeout          = tostring(var.idle_session_timeout)
      maxSessionDuration          = var.max_session_duration == null ? "" : tostring(var.max_session_duration)
      shellProfile = {
        linux   = var.shell_profile_linux
        windows = var.shell_profile_windows
      }
    }
  }

  log_group_arn_pattern = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${var.cloudwatch_log_group_name == null ? "*" : var.cloudwatch_log_group_name}"

  kms_statements = concat(
    [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ],
    length(var.kms_key_instance_role_arns) == 0 ? [] : [
      {
        Sid       = "InstancesEncryptSessionsAndLogs"
        Effect    = "Allow"
        Principal = { AWS = var.kms_key_instance_role_arns }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
      },
    ],
    length(var.kms_key_operator_arns) == 0 ? [] : [
      {
        Sid       = "OperatorsStartEncryptedSessions"
        Effect    = "Allow"
        Principal = { AWS = var.kms_key_operator_arns }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
        Resource  = "*"
      },
    ],
    [
      {
        Sid       = "CloudWatchLogsEncryptsSessionLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = local.log_group_arn_pattern }
        }
      },
    ],
  )
}

################################################################################
# Preferences document
################################################################################

resource "aws_ssm_document" "this" {
  count = var.create ? 1 : 0

  name            = var.document_name
  document_type   = "Session"
  document_format = "JSON"
  content         = jsonencode(local.document)

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !var.create_s3_bucket || var.s3_bucket_name != null
      error_message = "The create_s3_bucket is true but s3_bucket_name is null: name the bucket to create."
    }
    precondition {
      condition     = !var.create_cloudwatch_log_group || var.cloudwatch_log_group_name != null
      error_message = "The create_cloudwatch_log_group is true but cloudwatch_log_group_name is null: name the log group to create."
    }
    precondition {
      condition     = !(var.create_kms_key && var.kms_key_arn != null)
      error_message = "Set either create_kms_key = true or kms_key_arn, not both."
    }
    precondition {
      condition     = !var.run_as_enabled || var.run_as_default_user != ""
      error_message = "The run_as_enabled is true but run_as_default_user is empty: name the Linux user sessions run as."
    }
    precondition {
      condition     = !(var.create_cloudwatch_log_group && var.cloudwatch_encryption_enabled) || var.create_kms_key || var.kms_key_arn != null
      error_message = "The created log group must be KMS-encrypted when cloudwatch_encryption_enabled is true: set create_kms_key = true or kms_key_arn, or set cloudwatch_encryption_enabled = false."
    }
    precondition {
      condition     = var.create_kms_key || (length(var.kms_key_instance_role_arns) == 0 && length(var.kms_key_operator_arns) == 0)
      error_message = "The kms_key_instance_role_arns and kms_key_operator_arns only apply to a created key: set create_kms_key = true, or grant access in your key's own policy."
    }
  }
}

################################################################################
# KMS key
################################################################################

resource "aws_kms_key" "this" {
  count = var.create && var.create_kms_key ? 1 : 0

  description             = "Session Manager session data and session logs"
  deletion_window_in_days = var.kms_key_deletion_window_days
  enable_key_rotation     = true
  policy                  = jsonencode({ Version = "2012-10-17", Statement = local.kms_statements })

  tags = var.tags
}

################################################################################
# S3 bucket for session logs
################################################################################

resource "aws_s3_bucket" "this" {
  count = var.create && var.create_s3_bucket ? 1 : 0

  bucket        = var.s3_bucket_name
  force_destroy = var.s3_force_destroy

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  count = var.create && var.create_s3_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count = var.create && var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
      # null falls back to the AWS managed aws/s3 key.
      kms_master_key_id = local.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "this" {
  count = var.create && var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this[0].arn, "${aws_s3_bucket.this[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # Putting a policy while the public access block is being applied can fail.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count = var.create && var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    id     = "expire-session-logs"
    status = "Enabled"

    filter {
      prefix = var.s3_key_prefix
    }

    expiration {
      days = var.s3_log_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

################################################################################
# CloudWatch log group for session logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  count = var.create && var.create_cloudwatch_log_group ? 1 : 0

  name              = var.cloudwatch_log_group_name
  retention_in_days = var.cloudwatch_log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}
