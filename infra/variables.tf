variable "topology_file" {
  description = "Path of the topology JSON. null means infra/topology.json (the file the Rust engine reads too)."
  type        = string
  default     = null
}

variable "account_id" {
  description = "AWS account id used to build ARNs. null: asked from STS (needs credentials). Set it for an offline plan."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits (or null to ask STS)."
  }
}

variable "offline" {
  description = "Plan without credentials or network (skips the provider's credential, account and region checks). Never for apply."
  type        = bool
  default     = false
}

variable "artifacts_dir" {
  description = "Directory holding <function>/bootstrap.zip as `make build` writes them. null: <repo>/target/lambda."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …, 365, …, 3653)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of each function in each region; also the SQS event source mappings' maximum concurrency."
  type        = number
  default     = 5

  validation {
    condition     = var.reserved_concurrency >= 2 && var.reserved_concurrency <= 1000
    error_message = "reserved_concurrency must be 2..1000 (an SQS event source mapping needs a maximum concurrency of at least 2)."
  }
}

variable "memory_mb" {
  description = "Memory of each function."
  type        = number
  default     = 128
}

variable "rust_log" {
  description = "RUST_LOG of every function."
  type        = string
  default     = "info"
}

variable "alarm_email" {
  description = "If set, each region's alarm topic mails this address (the subscription must be confirmed)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection of the DynamoDB table. Turn off before `terraform destroy`."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
