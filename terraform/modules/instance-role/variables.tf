variable "create" {
  description = "Whether to create any resources. Set to false to disable the module without removing it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the IAM role and of the instance profile."
  type        = string
  default     = "ssmkit-instance"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.name))
    error_message = "The name must be 1 to 64 characters from letters, digits and +=,.@_-."
  }
}

variable "path" {
  description = "IAM path of the role and the instance profile."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7e]+/)?$", var.path)) && length(var.path) <= 512
    error_message = "The path must start and end with '/' and be at most 512 printable characters, for example / or /ssmkit/."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a policy used as the role's permissions boundary, or null for none."
  type        = string
  default     = null
}

variable "additional_policy_arns" {
  description = "Extra managed policy ARNs to attach besides AmazonSSMManagedInstanceCore."
  type        = list(string)
  default     = []
}

variable "logging_s3_bucket_name" {
  description = "Bucket that session logs are written to; null grants no S3 permissions. Must be known at plan time."
  type        = string
  default     = null

  validation {
    condition     = var.logging_s3_bucket_name == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.logging_s3_bucket_name))
    error_message = "The logging_s3_bucket_name must be a bucket name of 3 to 63 lower-case letters, digits, '.' and '-'."
  }
}

variable "logging_s3_key_prefix" {
  description = "Key prefix inside logging_s3_bucket_name that s3:PutObject is limited to; empty means the whole bucket."
  type        = string
  default     = ""

  validation {
    condition     = !startswith(var.logging_s3_key_prefix, "/") && length(var.logging_s3_key_prefix) <= 512
    error_message = "The logging_s3_key_prefix must not start with '/' and must be 0 to 512 characters."
  }
}

variable "logging_cloudwatch_log_group_name" {
  description = "CloudWatch Logs group that session output streams to; null grants no CloudWatch Logs permissions."
  type        = string
  default     = null

  validation {
    condition     = var.logging_cloudwatch_log_group_name == null ? true : can(regex("^[\\w#/.-]{1,512}$", var.logging_cloudwatch_log_group_name))
    error_message = "The logging_cloudwatch_log_group_name must be 1 to 512 characters from letters, digits and _-/.#."
  }
}

variable "logging_kms_key_arns" {
  description = "KMS key ARNs the instance may use for session encryption and encrypted logs (kms:Decrypt, kms:GenerateDataKey). A list so a key created in the same apply works."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.logging_kms_key_arns : can(regex("^arn:[^:]+:kms:[^:]*:[^:]*:key/.+$", a))])
    error_message = "Every logging_kms_key_arns entry must be a key ARN: arn:<partition>:kms:<region>:<account>:key/<id>."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
