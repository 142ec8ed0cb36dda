variable "create" {
  description = "Whether to create any resources. Set to false to disable the module without removing it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the IAM policy."
  type        = string
  default     = "ssmkit-session-operators"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,128}$", var.name))
    error_message = "The name must be 1 to 128 characters from letters, digits and +=,.@_-."
  }
}

variable "path" {
  description = "IAM path of the policy."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7e]+/)?$", var.path)) && length(var.path) <= 512
    error_message = "The path must start and end with '/' and be at most 512 printable characters, for example / or /ssmkit/."
  }
}

variable "target_tag_key" {
  description = "Tag key an instance must carry (with one of target_tag_values) for operators to start sessions on it."
  type        = string
  default     = "ssmkit:access"

  validation {
    condition     = can(regex("^[\\w .:/=+@-]{1,128}$", var.target_tag_key)) && !startswith(lower(var.target_tag_key), "aws:")
    error_message = "The target_tag_key must be 1 to 128 characters from letters, digits, spaces and _.:/=+-@, and must not start with aws:."
  }
}

variable "target_tag_values" {
  description = "Accepted values of target_tag_key (wildcards * and ? allowed): 1 to 50 values."
  type        = list(string)
  default     = ["true"]

  validation {
    condition     = length(var.target_tag_values) >= 1 && length(var.target_tag_values) <= 50 && alltrue([for v in var.target_tag_values : length(v) <= 256])
    error_message = "The target_tag_values must hold 1 to 50 values of at most 256 characters each."
  }
}

variable "shell_document_name" {
  description = "Name of the account's Session preferences document that shells use."
  type        = string
  default     = "SSM-SessionManagerRunShell"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,128}$", var.shell_document_name))
    error_message = "The shell_document_name must be 3 to 128 characters from letters, digits, '_', '.', '-'."
  }
}

variable "allow_shell" {
  description = "Allow interactive shells (the shell_document_name document)."
  type        = bool
  default     = true
}

variable "allow_port_forwarding" {
  description = "Allow AWS-StartPortForwardingSession (ports on the instance itself)."
  type        = bool
  default     = true
}

variable "allow_port_forwarding_to_remote_host" {
  description = "Allow AWS-StartPortForwardingSessionToRemoteHost (hosts reachable from the instance)."
  type        = bool
  default     = false
}

variable "allow_ssh" {
  description = "Allow AWS-StartSSHSession (ssh through Session Manager)."
  type        = bool
  default     = false
}

variable "allow_interactive_commands" {
  description = "Allow AWS-StartInteractiveCommand and AWS-StartNonInteractiveCommand (single commands, as ssmkit exec runs them)."
  type        = bool
  default     = false
}

variable "kms_key_arns" {
  description = "KMS key ARNs used to encrypt sessions; operators get kms:GenerateDataKey on them. A list so a key created in the same apply works."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.kms_key_arns : can(regex("^arn:[^:]+:kms:[^:]*:[^:]*:key/.+$", a))])
    error_message = "Every kms_key_arns entry must be a key ARN: arn:<partition>:kms:<region>:<account>:key/<id>."
  }
}

variable "role_names" {
  description = "IAM role names the policy is attached to. Must be known at plan time."
  type        = list(string)
  default     = []
}

variable "group_names" {
  description = "IAM group names the policy is attached to. Must be known at plan time."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to the policy."
  type        = map(string)
  default     = {}
}
