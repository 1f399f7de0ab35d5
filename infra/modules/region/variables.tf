variable "region" {
  description = "The region this instance deploys to; must be its provider's region."
  type        = string
}

variable "rules" {
  description = "This region's slice of the root's local.rules: rule name => { pattern, target = { kind, name } }."
  type        = any
}

variable "shared" {
  description = "Values common to every region (root local.shared): ids, ARNs of global resources, settings."
  type        = any
}
