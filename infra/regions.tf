# One module instance per region of the topology. Terraform cannot create a provider or a
# module instance from data, so each region is spelled out here (and in providers.tf). A module
# block whose region is not in the topology deploys nothing (count = 0); a topology region
# without a module block fails the plan (see output "regions").

module "region_us_west_2" {
  source    = "./modules/region"
  count     = contains(local.regions, "us-west-2") ? 1 : 0
  providers = { aws = aws.us_west_2 }

  region = "us-west-2"
  rules  = lookup(local.rules, "us-west-2", {})
  shared = local.shared
}

module "region_us_east_1" {
  source    = "./modules/region"
  count     = contains(local.regions, "us-east-1") ? 1 : 0
  providers = { aws = aws.us_east_1 }

  region = "us-east-1"
  rules  = lookup(local.rules, "us-east-1", {})
  shared = local.shared
}

module "region_eu_west_1" {
  source    = "./modules/region"
  count     = contains(local.regions, "eu-west-1") ? 1 : 0
  providers = { aws = aws.eu_west_1 }

  region = "eu-west-1"
  rules  = lookup(local.rules, "eu-west-1", {})
  shared = local.shared
}

locals {
  # Every region module instance, by the region it was given. Add a new module here too.
  region_outputs = merge(
    { for m in module.region_us_west_2 : m.region => m },
    { for m in module.region_us_east_1 : m.region => m },
    { for m in module.region_eu_west_1 : m.region => m },
  )
  wired_regions   = keys(local.region_outputs)
  unwired_regions = [for r in local.regions : r if !contains(local.wired_regions, r)]
  miswired        = [for r, m in local.region_outputs : "module for ${r} has the provider of ${m.provider_region}" if m.provider_region != r]

  # What every region module gets. Nothing here may depend on a region module (cycle).
  shared = {
    primary_region      = local.primary_region
    regions             = local.regions
    account_id          = local.account_id
    partition           = local.partition
    table_name          = local.table_name
    bus_name            = local.bus_name
    kms_primary_key_arn = aws_kms_key.moebi.arn
    key_policies        = local.key_policies
    bus_arns            = { for r in local.regions : r => local.arn[r].bus }
    # ARNs taken through the role policies, so that nothing uses a role before its policy.
    function_role_arns = {
      for r in local.regions : r => {
        for f in local.functions : f => "arn:${local.partition}:iam::${local.account_id}:role/${aws_iam_role_policy.function["${r}/${f}"].role}"
      }
    }
    forward_role_arns = {
      for r in local.forwarding_regions : r => "arn:${local.partition}:iam::${local.account_id}:role/${aws_iam_role_policy.forward[r].role}"
    }
    forwarders_to        = local.forwarders_to
    queues               = local.queue_settings
    artifacts_dir        = local.artifacts_dir
    log_retention_days   = var.log_retention_days
    reserved_concurrency = var.reserved_concurrency
    memory_mb            = var.memory_mb
    log_level            = var.log_level
    alarm_email          = var.alarm_email
    deletion_protection  = var.deletion_protection
    # The front door: every region's HTTP API trusts the one user pool (signin.tf).
    signin                = { issuer = local.signin.issuer, audience = local.signin.audience }
    api_access_log_prefix = local.api_access_log_prefix
    api_throttling        = { rate_limit = var.api_throttling_rate_limit, burst_limit = var.api_throttling_burst_limit }
    # What the emulator lacks (variables.tf): all false on AWS.
    emulator = {
      lacks_kms_replicas             = var.emulator_lacks_kms_replicas
      lacks_global_tables            = var.emulator_lacks_global_tables
      lacks_lambda_invoke            = var.emulator_lacks_lambda_invoke
      lacks_sqs_redrive_allow_policy = var.emulator_lacks_sqs_redrive_allow_policy
    }
  }
}
