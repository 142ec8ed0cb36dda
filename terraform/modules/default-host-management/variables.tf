variable "create" {
  description = "Whether to create any resources. Set to false to disable the module without removing it."
  type        = bool
  default     = true
}

variable "create_service_setting" {
  description = "Whether to set the Default Host Management service setting; false creates only the role (for example when the setting is managed elsewhere)."
  type        = bool
  default     = true
}

variable "role_name" {
  description = "Name of the IAM role Systems Manager assumes to manage EC2 instances."
  type        = string
  default     = "AWSSystemsManagerDefaultEC2InstanceManagementRole"

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.role_name))
    error_message = "The role_name must be 1 to 64 characters from letters, digits and +=,.@_-."
  }
}

variable "role_path" {
  description = "IAM path of the role; the service setting value is the path (without the leading '/') followed by the name."
  type        = string
  default     = "/service-role/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7e]+/)?$", var.role_path)) && length(var.role_path) <= 512
    error_message = "The role_path must start and end with '/' and be at most 512 printable characters, for example / or /service-role/."
  }
}

variable "permissions_boundary_arn" {
  description = "ARN of a policy used as the role's permissions boundary, or null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to the role."
  type        = map(string)
  default     = {}
}
