variable "create" {
  description = "Whether to create any resources. Set to false to disable the module without removing it."
  type        = bool
  default     = true
}

variable "document_name" {
  description = "Name of the Session document holding the preferences. Session Manager reads SSM-SessionManagerRunShell; use another name only for documents passed explicitly with --document-name."
  type        = string
  default     = "SSM-SessionManagerRunShell"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,128}$", var.document_name)) && !can(regex("^(?i)(aws-|amazon|amzn)", var.document_name))
    error_message = "The document_name must be 3 to 128 characters from letters, digits, '_', '.', '-' and must not start with AWS-, Amazon or AMZN (reserved prefixes)."
  }
}

variable "idle_session_timeout" {
  description = "Minutes without activity after which a session ends: a whole number from 1 to 60."
  type        = number
  default     = 20

  validation {
    condition     = var.idle_session_timeout >= 1 && var.idle_session_timeout <= 60 && floor(var.idle_session_timeout) == var.idle_session_timeout
    error_message = "The idle_session_timeout must be a whole number of minutes from 1 to 60."
  }
}

variable "max_session_duration" {
  description = "Maximum session length in minutes: a whole number from 1 to 1440, or null for no limit."
  type        = number
  default     = null

  validation {
    condition     = var.max_session_duration == null ? true : (var.max_session_duration >= 1 && var.max_session_duration <= 1440 && floor(var.max_session_duration) == var.max_session_duration)
    error_message = "The max_session_duration must be null (no limit) or a whole number of minutes from 1 to 1440."
  }
}

variable "run_as_enabled" {
  description = "Whether Linux sessions run as run_as_default_user (or the SSMSessionRunAs tag of the caller) instead of ssm-user."
  type        = bool
  default     = false
}

variable "run_as_default_user" {
  description = "Linux user that sessions run as when run_as_enabled is true; never root."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z_][a-z0-9_.-]{0,31})?$", var.run_as_default_user)) && var.run_as_default_user != "root"
    error_message = "The run_as_default_user must be empty or a Linux user name of 1 to 32 characters (a-z, 0-9, '_', '.', '-', not starting with a digit), and must not be root."
  }
}

variable "shell_profile_linux" {
  description = "Commands run at the start of every Linux session (for example 'exec bash -l'); empty for none."
  type        = string
  default     = ""

  validation {
    condition     = length(var.shell_profile_linux) <= 4096
    error_message = "The shell_profile_linux must be 0 to 4096 characters."
  }
}

variable "shell_profile_windows" {
  description = "Commands run at the start of every Windows session; empty for none."
  type        = string
  default     = ""

  validation {
    condition     = length(var.shell_profile_windows) <= 4096
    error_message = "The shell_profile_windows must be 0 to 4096 characters."
  }
}

variable "s3_bucket_name" {
  description = "Bucket that session logs are uploaded to (created when create_s3_bucket is true); null disables S3 logging."
  type        = string
  default     = null

  validation {
    condition     = var.s3_bucket_name == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_name))
    error_message = "The s3_bucket_name must be null or a bucket name of 3 to 63 lower-case letters, digits, '.' and '-'."
  }
}

variable "s3_key_prefix" {
  description = "Key prefix of the session logs inside s3_bucket_name; empty for the bucket root."
  type        = string
  default     = ""

  validation {
    condition     = !startswith(var.s3_key_prefix, "/") && length(var.s3_key_prefix) <= 512
    error_message = "The s3_key_prefix must not start with '/' and must be 0 to 512 characters."
  }
}

variable "s3_encryption_enabled" {
  description = "Whether Session Manager refuses to upload logs to a bucket without default encryption."
  type        = bool
  default     = true
}

variable "create_s3_bucket" {
  description = "Whether to create s3_bucket_name: SSE-KMS, public access blocked, TLS-only policy, log expiry."
  type        = bool
  default     = false
}

variable "s3_log_expiration_days" {
  description = "Days after which session logs in the created bucket expire: 1 to 3650."
  type        = number
  default     = 365

  validation {
    condition     = var.s3_log_expiration_days >= 1 && var.s3_log_expiration_days <= 3650 && floor(var.s3_log_expiration_days) == var.s3_log_expiration_days
    error_message = "The s3_log_expiration_days must be a whole number of days from 1 to 3650."
  }
}

variable "s3_force_destroy" {
  description = "Whether destroying the created bucket also deletes the logs in it."
  type        = bool
  default     = false
}

variable "cloudwatch_log_group_name" {
  description = "CloudWatch Logs group that session output goes to (created when create_cloudwatch_log_group is true); null disables CloudWatch logging."
  type        = string
  default     = null

  validation {
    condition     = var.cloudwatch_log_group_name == null ? true : can(regex("^[\\w#/.-]{1,512}$", var.cloudwatch_log_group_name))
    error_message = "The cloudwatch_log_group_name must be null or 1 to 512 characters from letters, digits and _-/.#."
  }
}

variable "cloudwatch_encryption_enabled" {
  description = "Whether Session Manager refuses to send output to a log group that is not KMS-encrypted."
  type        = bool
  default     = true
}

variable "cloudwatch_streaming_enabled" {
  description = "Whether output is streamed to CloudWatch as it happens (true) or uploaded when the session ends (false)."
  type        = bool
  default     = true
}

variable "create_cloudwatch_log_group" {
  description = "Whether to create cloudwatch_log_group_name with cloudwatch_log_retention_days and the session KMS key."
  type        = bool
  default     = false
}

variable "cloudwatch_log_retention_days" {
  description = "Retention of the created log group in days: one of 0 (never expire), 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  type        = number
  default     = 365

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.cloudwatch_log_retention_days)
    error_message = "The cloudwatch_log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "kms_key_arn" {
  description = "ARN of an existing KMS key for session data encryption and encrypted logs; null for none (or when create_kms_key is true)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:[^:]+:kms:[^:]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be null or a key ARN: arn:<partition>:kms:<region>:<12-digit account>:key/<id>."
  }
}

variable "create_kms_key" {
  description = "Whether to create a KMS key for session encryption, the created bucket and the created log group."
  type        = bool
  default     = false
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period before the created KMS key is deleted: 7 to 30 days."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30 && floor(var.kms_key_deletion_window_days) == var.kms_key_deletion_window_days
    error_message = "The kms_key_deletion_window_days must be a whole number of days from 7 to 30."
  }
}

variable "kms_key_instance_role_arns" {
  description = "Instance role ARNs allowed kms:Decrypt and kms:GenerateDataKey on the created key."
  type        = list(string)
  default     = []
}

variable "kms_key_operator_arns" {
  description = "Operator (user or role) ARNs allowed kms:GenerateDataKey, kms:Decrypt and kms:DescribeKey on the created key."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
