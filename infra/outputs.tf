output "regions" {
  description = "The regions deployed, in topology order."
  value       = local.regions

  # The guard: the topology and the wiring of this root module must agree.
  precondition {
    condition     = length(local.unwired_regions) == 0
    error_message = "The topology has region(s) ${join(", ", local.unwired_regions)} that infra/ does not wire (wired: ${join(", ", local.wired_regions)}). For each, add a `provider \"aws\"` block with its alias in infra/providers.tf, a `module \"region_<name>\"` block in infra/regions.tf and the module in local.region_outputs."
  }

  precondition {
    condition     = length(local.miswired) == 0
    error_message = "Region modules wired to the wrong provider: ${join("; ", local.miswired)}. Fix `providers` in infra/regions.tf."
  }

  precondition {
    condition     = length(local.bad_homes) == 0
    error_message = "The topology homes ${join(", ", local.bad_homes)} in a region it does not list (regions: ${join(", ", local.regions)})."
  }

  precondition {
    condition     = length(local.bad_evacuated) == 0
    error_message = "Cannot evacuate ${join(", ", local.bad_evacuated)}: each evacuated region must be one of the topology's (${join(", ", local.regions)}), and its standby (the next region) must not be evacuated too."
  }

  precondition {
    condition     = length(local.dup_names) == 0
    error_message = "The topology uses the name(s) ${join(", ", local.dup_names)} more than once (participants, bots and stores share one namespace)."
  }

  precondition {
    condition     = length(distinct(local.regions)) == length(local.regions) && length(local.regions) > 0
    error_message = "The topology must list at least one region, each once."
  }

  precondition {
    condition     = local.queue_settings.visibility_timeout_seconds >= 6 * local.queue_settings.function_timeout_seconds && local.queue_settings.batch_size >= 1 && local.queue_settings.batch_size <= 10 && local.queue_settings.max_receive_count >= 1
    error_message = "topology.queues: visibility_timeout_seconds must be at least 6 x function_timeout_seconds, batch_size 1..10, max_receive_count at least 1."
  }
}

output "rules" {
  description = "The routing rules derived from the topology: region => rule name => { pattern, target }. The AWS rule is named moebi-<rule name>."
  value       = local.rules
}

output "homes" {
  description = "Home region of every participant, bot and store."
  value = {
    participants = { for p in local.participants : p.name => p.home }
    bots         = { for b in local.bots : b.name => b.home }
    stores       = { for s in local.stores : s.name => s.home }
  }
}

output "table_name" {
  description = "The DynamoDB global table."
  value       = aws_dynamodb_table.moebi.name
}

output "table_arn" {
  description = "ARN of the table in the primary region."
  value       = aws_dynamodb_table.moebi.arn
}

output "kms_key_arn" {
  description = "The primary multi-region KMS key."
  value       = aws_kms_key.moebi.arn
}

output "bus_arns" {
  description = "The `moebi` bus of each region."
  value       = { for r, m in local.region_outputs : r => m.bus_arn }
}

output "queue_urls" {
  description = "Region => function => queue URL."
  value       = { for r, m in local.region_outputs : r => m.queue_urls }
}

output "dlq_urls" {
  description = "Region => function (or `forward`) => dead-letter queue URL."
  value       = { for r, m in local.region_outputs : r => m.dlq_urls }
}

output "function_names" {
  description = "Region => short name => function name."
  value       = { for r, m in local.region_outputs : r => m.function_names }
}

output "function_role_arns" {
  description = "Region => function => execution role ARN."
  value       = local.shared.function_role_arns
}

output "forward_role_arns" {
  description = "Region => role its forwarding rules act with."
  value       = local.shared.forward_role_arns
}

output "wiring" {
  description = "Everything each region module deployed, for tests and for operators."
  value       = local.region_outputs
}

output "dashboard_names" {
  description = "Region => its CloudWatch dashboard (the functions' metrics, queue depths, alarms)."
  value       = { for r, m in local.region_outputs : r => m.dashboard.name }
}

# --- Sign-in and the front door ---------------------------------------------------------------

output "user_pool_id" {
  description = "The Cognito user pool of people and stores (primary region). Users: infra/README.md, \"Users\"."
  value       = aws_cognito_user_pool.moebi.id
}

output "user_pool_client_id" {
  description = "The public app client moebi's clients sign in with (USER_PASSWORD_AUTH, SRP, refresh)."
  value       = aws_cognito_user_pool_client.moebi.id
}

output "jwt_issuer" {
  description = "The issuer of the pool's tokens, which every region's HTTP API trusts (https://cognito-idp.<primary region>.amazonaws.com/<pool id>)."
  value       = local.signin.issuer
}

output "user_groups" {
  description = "The groups of the pool: a token's cognito:groups claim names the caller's kind."
  value       = sort(keys(aws_cognito_user_group.moebi))
}

output "api_endpoints" {
  description = "Region => the URL of its HTTP API (the front door): POST /messages, GET /inbox, POST /stock, POST /stock/status."
  value       = { for r, m in local.region_outputs : r => m.api.endpoint }
}

output "socket_urls" {
  description = "Region => the URL of its WebSocket API (live delivery): connect with ?token=<a token of the pool>."
  value       = { for r, m in local.region_outputs : r => m.live.url }
}

output "drill" {
  description = "Region => the FIS experiment template id pausing the replication of its replica (null on an emulator): scripts/drill.sh on AWS starts it."
  value       = { for r, m in local.region_outputs : r => m.drill_template_id }
}
