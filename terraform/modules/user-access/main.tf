data "aws_partition" "current" {
  count = var.create ? 1 : 0
}

locals {
  partition = try(data.aws_partition.current[0].partition, "aws")

  # Account-owned documents have an account in their ARN; AWS-owned ones have none.
  document_arns = concat(
    var.allow_shell ? ["arn:${local.partition}:ssm:*:*:document/${var.shell_document_name}"] : [],
    var.allow_port_forwarding ? ["arn:${local.partition}:ssm:*::document/AWS-StartPortForwardingSession"] : [],
    var.allow_port_forwarding_to_remote_host ? ["arn:${local.partition}:ssm:*::document/AWS-StartPortForwardingSessionToRemoteHost"] : [],
    var.allow_ssh ? ["arn:${local.partition}:ssm:*::document/AWS-StartSSHSession"] : [],
    var.allow_interactive_commands ? [
      "arn:${local.partition}:ssm:*::document/AWS-StartInteractiveCommand",
      "arn:${local.partition}:ssm:*::document/AWS-StartNonInteractiveCommand",
    ] : [],
  )

  statements = concat(
    [
      {
        Sid    = "StartSessionOnTaggedInstances"
        Effect = "Allow"
        Action = "ssm:StartSession"
        Resource = [
          "arn:${local.partition}:ec2:*:*:instance/*",
          "arn:${local.partition}:ssm:*:*:managed-instance/*",
        ]
        Condition = {
          StringLike = { "ssm:resourceTag/${var.target_tag_key}" = var.target_tag_values }
          # Without this, a StartSession without a document name would skip the document check.
          BoolIfExists = { "ssm:SessionDocumentAccessCheck" = "true" }
        }
      },
      {
        Sid      = "StartSessionWithAllowedDocuments"
        Effect   = "Allow"
        Action   = "ssm:StartSession"
        Resource = local.document_arns
      },
      {
        Sid      = "ManageOwnSessions"
        Effect   = "Allow"
        Action   = ["ssm:TerminateSession", "ssm:ResumeSession"]
        Resource = "arn:${local.partition}:ssm:*:*:session/$${aws:userid}-*"
      },
      {
        Sid    = "FindInstancesAndSessions"
        Effect = "Allow"
        Action = [
          "ssm:DescribeSessions",
          "ssm:DescribeInstanceInformation",
          "ssm:DescribeInstanceProperties",
          "ssm:GetConnectionStatus",
          "ec2:DescribeInstances",
        ]
        Resource = "*"
      },
    ],
    length(var.kms_key_arns) == 0 ? [] : [
      {
        Sid      = "EncryptSessions"
        Effect   = "Allow"
        Action   = "kms:GenerateDataKey"
        Resource = var.kms_key_arns
      },
    ],
  )

  policy_json = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}

resource "aws_iam_policy" "this" {
  count = var.create ? 1 : 0

  name        = var.name
  path        = var.path
  description = "Start Session Manager sessions on instances tagged ${var.target_tag_key}"
  policy      = local.policy_json

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(local.document_arns) > 0
      error_message = "No session document is allowed: set at least one of allow_shell, allow_port_forwarding, allow_port_forwarding_to_remote_host, allow_ssh, allow_interactive_commands."
    }
  }
}

resource "aws_iam_role_policy_attachment" "this" {
  for_each = var.create ? toset(var.role_names) : toset([])

  role       = each.value
  policy_arn = aws_iam_policy.this[0].arn
}

resource "aws_iam_group_policy_attachment" "this" {
  for_each = var.create ? toset(var.group_names) : toset([])

  group      = each.value
  policy_arn = aws_iam_policy.this[0].arn
}
