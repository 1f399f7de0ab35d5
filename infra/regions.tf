# One module instance per region of the topology. Terraform cannot create a provider or a
# module instance from data, so each region is spelled out here (and in providers.tf). A module
# block whose region is not in the topology deploys nothing (count = 0); a topology region
# without a module block fails the plan (see output "regions").

module "region_us_west_2" {
  source    = "./modules/region"
  count     = contains(local.regions, "us-west-2") ? 1 : 0
  providers = { aws = aws.us_west_2 }

  region           = "us-west-2"
  rules            = lookup(local.rules, "us-west-2", {})
  shared           = local.shared
  inbox_stream_arn = local.inbox_stream_arns["us-west-2"]
}

module "region_us_east_1" {
  source    = "./modules/region"
  count     = contains(local.regions, "us-east-1") ? 1 : 0
  providers = { aws = aws.us_east_1 }

  region           = "us-east-1"
  rules            = lookup(local.rules, "us-east-1", {})
  shared           = local.shared
  inbox_stream_arn = local.inbox_stream_arns["us-east-1"]
}

module "region_eu_west_1" {
  source    = "./modules/region"
  count     = contains(local.regions, "eu-west-1") ? 1 : 0
  providers = { aws = aws.eu_west_1 }

  region           = "eu-west-1"
  rules            = lookup(local.rules, "eu-west-1", {})
  shared           = local.shared
  inbox_stream_arn = local.inbox_stream_arns["eu-west-1"]
}

locals {
  # Each region's stream of the global table, which the region's push function reads: the
  # table's own in the primary region, each replica's elsewhere (null without global tables:
  # the region module then reads its own table's).
  inbox_stream_arns = {
    for r in local.regions : r => (r == local.primary_region ? aws_dynamodb_table.moebi.stream_arn :
    one([for rep in aws_dynamodb_table.moebi.replica : rep.stream_arn if rep.region_name == r]))
  }
}

locals {
  # Each region's KMS key (the primary's, or its replica), for the global table's replicas. Read
  # output by output, not through local.region_outputs: a reference to a whole module instance
  # waits for all of it, and each region's push mapping waits for the table (a cycle).
  region_key_arns = {
    "us-west-2" = try(module.region_us_west_2[0].kms_key_arn, null)
    "us-east-1" = try(module.region_us_east_1[0].kms_key_arn, null)
    "eu-west-1" = try(module.region_eu_west_1[0].kms_key_arn, null)
  }
}

locals {
  # Every region module instance, by the region it was given. Add a new module here too (and in
  # local.region_key_arns).
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
    signin = {
      issuer    = local.signin.issuer
      audience  = local.signin.audience
      client_id = local.signin.client_id
      # Where the sockets function reads the pool's keys, and clients sign in. On an emulator,
      # under its URL: the issuer there is AWS's address, which the emulator does not serve.
      jwks_url    = var.endpoint_url != null ? "${var.endpoint_url}/${local.signin.pool_id}/.well-known/jwks.json" : "${local.signin.issuer}/.well-known/jwks.json"
      cognito_url = coalesce(var.endpoint_url, "https://cognito-idp.${local.primary_region}.amazonaws.com")
    }
    connections_table = local.connections_table
    # The drill's FIS experiments (fis.tf): not on an emulator. The role's ARN is taken
    # through its policy, so that no experiment uses the role before its policy.
    fis_enabled           = local.fis_enabled
    fis_role_arn          = local.fis_enabled ? "arn:${local.partition}:iam::${local.account_id}:role/${aws_iam_role_policy.fis[0].role}" : null
    emulator_endpoint     = var.endpoint_url
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
