variable "region" {
  description = "The region this instance deploys to; must be its provider's region."
  type        = string
}

variable "rules" {
  description = "This region's slice of the root's local.rules: rule name => { pattern, target = { kind, name } }."
  type        = any
}

variable "inbox_stream_arn" {
  description = "The stream of this region's replica of the global table (null on an emulator without global tables: the region's own table's)."
  type        = string
  default     = null
}

variable "shared" {
  description = "Values common to every region (root local.shared): ids, ARNs of global resources, settings."
  type        = any
}
