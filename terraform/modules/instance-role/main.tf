data "aws_partition" "current" {
  count = var.create ? 1 : 0
}

data "aws_region" "current" {
  count = var.create && var.logging_cloudwatch_log_group_name != null ? 1 : 0
}

data "aws_caller_identity" "current" {
  count = var.create && var.logging_cloudwatch_log_group_name != null ? 1 : 0
}

locals {
  partition = try(data.aws_partition.current[0].partition, "aws")

  managed_policy_arns = concat(
    ["arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"],
    var.additional_policy_arns,
  )

  log_group_prefix = var.logging_cloudwatch_log_group_name == null ? null : (
    "arn:${local.partition}:logs:${try(data.aws_region.current[0].name, "")}:${try(data.aws_caller_identity.current[0].account_id, "")}:log-group"
  )

  s3_object_arn = var.logging_s3_bucket_name == null ? null : (
    "arn:${local.partition}:s3:::${var.logging_s3_bucket_name}/${var.logging_s3_key_prefix}*"
  )

  logging_statements = concat(
    var.logging_s3_bucket_name == null ? [] : [
      {
        Sid      = "SessionLogsToS3"
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = [local.s3_object_arn]
      },
      {
        Sid      = "CheckSessionLogBucketEncryption"
        Effect   = "Allow"
        Action   = ["s3:GetEncryptionConfiguration"]
        Resource = ["arn:${local.partition}:s3:::${var.logging_s3_bucket_name}"]
      },
    ],
    var.logging_cloudwatch_log_group_name == null ? [] : [
      {
        Sid    = "SessionLogsToCloudWatch"
        Effect = "Allow"
        Action = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = [
          "${local.log_group_prefix}:${var.logging_cloudwatch_log_group_name}",
          "${local.log_group_prefix}:${var.logging_cloudwatch_log_group_name}:*",
        ]
      },
      {
        # The agent lists groups to check that the target exists; this action
        # cannot be limited to one group.
        Sid      = "FindSessionLogGroup"
        Effect   = "Allow"
        Action   = ["logs:DescribeLogGroups"]
        Resource = ["${local.log_group_prefix}:*"]
      },
    ],
    length(var.logging_kms_key_arns) == 0 ? [] : [
      {
        Sid      = "SessionEncryption"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.logging_kms_key_arns
      },
    ],
  )

  create_logging_policy = var.create && (
    var.logging_s3_bucket_name != null ||
    var.logging_cloudwatch_log_group_name != null ||
    length(var.logging_kms_key_arns) > 0
  )
}

resource "aws_iam_role" "this" {
  count = var.create ? 1 : 0

  name                 = var.name
  path                 = var.path
  description          = "EC2 instances managed by Systems Manager (Session Manager)"
  permissions_boundary = var.permissions_boundary_arn

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EC2AssumeRole"
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.logging_s3_key_prefix == "" || var.logging_s3_bucket_name != null
      error_message = "The logging_s3_key_prefix is set but logging_s3_bucket_name is null: set the bucket too, or leave the prefix empty."
    }
  }
}

resource "aws_iam_instance_profile" "this" {
  count = var.create ? 1 : 0

  name = var.name
  path = var.path
  role = aws_iam_role.this[0].name

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "this" {
  # Keyed by position, not ARN: an ARN of a policy created in the same apply is unknown at plan.
  for_each = var.create ? { for i, arn in local.managed_policy_arns : tostring(i) => arn } : {}

  role       = aws_iam_role.this[0].name
  policy_arn = each.value
}

resource "aws_iam_role_policy" "logging" {
  count = local.create_logging_policy ? 1 : 0

  name   = "session-logging"
  role   = aws_iam_role.this[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.logging_statements })
}
