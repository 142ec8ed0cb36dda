variable "create" {
  description = "Whether to create any resources. Set to false to disable the module without removing it."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name prefix for the security group and the Name tag of every endpoint."
  type        = string
  default     = "ssmkit"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.name))
    error_message = "The name must be 1 to 63 characters: letters, digits, '_', '.', '-', starting with a letter or digit."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the endpoints are created in."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "The vpc_id must look like vpc-0123abcd (\"vpc-\" followed by hex digits)."
  }
}

variable "subnet_ids" {
  description = "Subnets for the interface endpoints: one per availability zone, 1 to 16 subnets, no duplicates."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && length(var.subnet_ids) <= 16 && length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "The subnet_ids must hold 1 to 16 distinct subnet IDs (one per availability zone)."
  }
}

variable "enable_kms_endpoint" {
  description = "Whether to add a kms interface endpoint (needed when sessions or their logs are encrypted with KMS)."
  type        = bool
  default     = false
}

variable "enable_logs_endpoint" {
  description = "Whether to add a logs interface endpoint (needed when session output streams to CloudWatch Logs)."
  type        = bool
  default     = false
}

variable "enable_s3_gateway_endpoint" {
  description = "Whether to add an s3 gateway endpoint on route_table_ids (needed when session logs go to S3)."
  type        = bool
  default     = false
}

variable "route_table_ids" {
  description = "Route tables the s3 gateway endpoint is associated with; required when enable_s3_gateway_endpoint is true."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the endpoints on TCP 443. null means the VPC's primary CIDR block."
  type        = list(string)
  default     = null

  validation {
    condition     = var.allowed_cidr_blocks == null ? true : alltrue([for c in var.allowed_cidr_blocks : can(cidrnetmask(c))])
    error_message = "Every allowed_cidr_blocks entry must be an IPv4 CIDR block such as 10.0.0.0/16 (prefix length 0 to 32)."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups (for example the instances' group) allowed to reach the endpoints on TCP 443."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
