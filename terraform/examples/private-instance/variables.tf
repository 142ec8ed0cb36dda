variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint_url" {
  description = "Endpoint of an AWS emulator (moto, LocalStack, the ssmkit sandbox) that every service used here is pointed at; null for real AWS."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null ? true : can(regex("^https?://", var.aws_endpoint_url))
    error_message = "The aws_endpoint_url must be null or an http:// or https:// URL."
  }
}

variable "name" {
  description = "Name prefix for every resource (1 to 20 lower-case letters, digits and '-')."
  type        = string
  default     = "ssmkit-demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "The name must be 1 to 20 characters from lower-case letters, digits and '-', starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; the two private subnets take its first two /24-sized halves of a /20 split."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 24
    error_message = "The vpc_cidr must be an IPv4 CIDR block with a prefix length from 0 to 24, for example 10.42.0.0/16."
  }
}

variable "ami_id" {
  description = "AMI of the instance; it must run the SSM agent (Amazon Linux 2023 does). The default is an AMI the moto emulator knows; on real AWS pass a current AMI."
  type        = string
  default     = "ami-12c6146b"

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be ami- followed by 8 to 17 hex digits."
  }
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "t3.micro"
}

variable "root_volume_size" {
  description = "Size of the encrypted root volume in GiB (1 to 16384); null keeps the AMI's size. Emulators without AMI snapshots need a number."
  type        = number
  default     = null

  validation {
    condition     = var.root_volume_size == null ? true : (var.root_volume_size >= 1 && var.root_volume_size <= 16384)
    error_message = "The root_volume_size must be null or a number of GiB from 1 to 16384."
  }
}

variable "operator_principal_arns" {
  description = "Principals allowed to assume the operator role; empty means the account root (any IAM identity the account allows)."
  type        = list(string)
  default     = []
}

variable "force_destroy_logs" {
  description = "Whether destroying the example deletes the session logs bucket with its logs."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
