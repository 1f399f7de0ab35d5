# The topology and everything derived from it without touching a provider: the routing rules
# (local.rules, compared by a Rust test with the embedded engine's derivation), names, ARNs.

locals {
  topology_file = coalesce(var.topology_file, "${path.module}/topology.json")
  topology      = jsondecode(file(local.topology_file))

  regions        = local.topology.regions
  primary_region = local.regions[0]
  participants   = local.topology.participants
  bots           = try(local.topology.bots, [])
  stores         = local.topology.stores
  queue_settings = local.topology.queues

  tags = merge({ project = "moebi", managed-by = "terraform" }, var.tags)

  # Each region's standby (the next one; the last region's is the first), and the regions each
  # name's events go to: its home, and while that is evacuated (var.evacuated) its standby too.
  # Nothing is taken away when a region is evacuated, so no event falls between two rules while
  # they change; an event applied in both regions is applied once (effects are keyed by id).
  standby       = { for i, r in local.regions : r => local.regions[(i + 1) % length(local.regions)] }
  routed_to     = { for x in local.all_homes : x.name => contains(var.evacuated, x.home) ? [x.home, local.standby[x.home]] : [x.home] }
  home_of       = { for x in local.all_homes : x.name => x.home }
  bad_evacuated = [for r in var.evacuated : r if !contains(local.regions, r) || contains(var.evacuated, try(local.standby[r], r))]

  # from => to => the names whose events a rule of `from` sends to `to` (a region never forwards
  # its own residents' events: it applies them); every list sorted ascending.
  humans_to   = { for f in local.regions : f => { for t in local.regions : t => sort([for p in local.participants : p.name if contains(local.routed_to[p.name], t) && (f == t || p.home != f)]) } }
  bots_to     = { for f in local.regions : f => { for t in local.regions : t => sort([for b in local.bots : b.name if contains(local.routed_to[b.name], t) && (f == t || b.home != f)]) } }
  chatters_to = { for f in local.regions : f => { for t in local.regions : t => sort(concat(local.humans_to[f][t], local.bots_to[f][t])) } }
  stores_to   = { for f in local.regions : f => { for t in local.regions : t => sort([for s in local.stores : s.name if contains(local.routed_to[s.name], t) && (f == t || s.home != f)]) } }
  all_homes   = concat(local.participants, local.bots, local.stores)
  bad_homes   = [for x in local.all_homes : "${x.name} (${x.home})" if !contains(local.regions, x.home)]
  all_names   = [for x in local.all_homes : x.name]
  dup_names   = distinct([for n in local.all_names : n if length([for m in local.all_names : m if m == n]) > 1])
  other_than  = { for r in local.regions : r => [for r2 in local.regions : r2 if r2 != r] }

  # Candidate rules of each region, in the documented order; empty ones are dropped below.
  rule_candidates = {
    for r in local.regions : r => concat(
      [{ name = "chat-send", type = "chat.send", field = "to", values = local.humans_to[r][r], target = { kind = "queue", name = "chat-send" } }],
      [{ name = "moebi-reply", type = "chat.send", field = "to", values = local.bots_to[r][r], target = { kind = "function", name = "moebi-reply" } }],
      [for r2 in local.other_than[r] : { name = "chat-to-${r2}", type = "chat.send", field = "to", values = local.chatters_to[r][r2], target = { kind = "bus", name = r2 } }],
      [{ name = "stock-add", type = "stock.add", field = "store", values = local.stores_to[r][r], target = { kind = "queue", name = "stock-add" } }],
      [for r2 in local.other_than[r] : { name = "stock-add-to-${r2}", type = "stock.add", field = "store", values = local.stores_to[r][r2], target = { kind = "bus", name = r2 } }],
      [{ name = "stock-status", type = "stock.status", field = "asker", values = local.humans_to[r][r], target = { kind = "function", name = "stock-status" } }],
      [for r2 in local.other_than[r] : { name = "stock-status-to-${r2}", type = "stock.status", field = "asker", values = local.humans_to[r][r2], target = { kind = "bus", name = r2 } }],
    )
  }

  # region => rule name => { pattern, target }. AWS names the rule "moebi-<rule name>".
  rules = {
    for r, candidates in local.rule_candidates : r => {
      for c in candidates : c.name => {
        pattern = {
          "source"      = ["moebi"]
          "detail-type" = [c.type]
          "detail"      = { (c.field) = c.values }
        }
        target = c.target
      } if length(c.values) > 0
    }
  }

  # Regions whose events some rule of `r` forwards to, and the reverse.
  forwards_to   = { for r in local.regions : r => distinct([for name, rule in local.rules[r] : rule.target.name if rule.target.kind == "bus"]) }
  forwarders_to = { for r in local.regions : r => [for r2 in local.regions : r2 if contains(local.forwards_to[r2], r)] }

  functions       = ["chat-send", "moebi-reply", "stock-add", "stock-status", "front-door", "sockets", "push"]
  queue_functions = ["chat-send", "stock-add"]
  event_functions = ["moebi-reply", "stock-status"]
  # The front door answers its region's HTTP API synchronously: no queue, no rule, no DLQ (a
  # failure is the caller's HTTP error). The other four handle events and dead-letter.
  api_functions = ["front-door"]
  # Live delivery (modules/region/live.tf): the WebSocket API's authorizer and routes, and the
  # pushes from the inbox stream. Neither touches the bus; each its region's connections table.
  live_functions    = ["sockets", "push"]
  handler_functions = concat(local.queue_functions, local.event_functions)

  # ARNs built from names, so that IAM (global) can name regional resources. (Known at plan;
  # the key ARNs, which need the key id, are apart so as not to make the others unknown.)
  account_id = var.account_id != null ? var.account_id : data.aws_caller_identity.current[0].account_id
  partition  = data.aws_partition.current.partition
  table_name = "moebi"
  bus_name   = "moebi"
  # Each region's own (not global) table of open WebSocket connections.
  connections_table = "moebi-connections"
  arn = {
    for r in local.regions : r => {
      table       = "arn:${local.partition}:dynamodb:${r}:${local.account_id}:table/${local.table_name}"
      connections = "arn:${local.partition}:dynamodb:${r}:${local.account_id}:table/${local.connections_table}"
      # Any WebSocket API's `live` stage of this region and account: the API's id is made in
      # the region module, which cannot be named here without a cycle.
      manage_connections = "arn:${local.partition}:execute-api:${r}:${local.account_id}:*/live/POST/@connections/*"
      bus                = "arn:${local.partition}:events:${r}:${local.account_id}:event-bus/${local.bus_name}"
      queue              = { for f in local.queue_functions : f => "arn:${local.partition}:sqs:${r}:${local.account_id}:moebi-${f}" }
      dlq                = { for f in local.handler_functions : f => "arn:${local.partition}:sqs:${r}:${local.account_id}:moebi-${f}-dlq" }
      logs               = { for f in local.functions : f => "arn:${local.partition}:logs:${r}:${local.account_id}:log-group:/aws/lambda/moebi-${f}" }
      rule               = { for name, rule in local.rules[r] : name => "arn:${local.partition}:events:${r}:${local.account_id}:rule/${local.bus_name}/moebi-${name}" }
    }
  }
}

locals {
  # A multi-region key keeps its key id in every region.
  key_arns = { for r in local.regions : r => "arn:${local.partition}:kms:${r}:${local.account_id}:key/${aws_kms_key.moebi.key_id}" }
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {
  count = var.account_id == null ? 1 : 0
}

check "artifacts_built" {
  assert {
    condition     = alltrue([for f in local.functions : fileexists("${local.artifacts_dir}/${f}/bootstrap.zip")])
    error_message = "Some function zips are missing under ${local.artifacts_dir}: run `make build` before `terraform apply`."
  }
}

locals {
  artifacts_dir = coalesce(var.artifacts_dir, "${path.module}/../target/lambda")
}
