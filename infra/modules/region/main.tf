# One region of moebi: the `moebi` bus and its rules, the queues, the seven functions (four
# event handlers, the front door behind the region's HTTP API: api.tf, and live delivery's
# sockets and push: live.tf), alarms.

data "aws_region" "current" {}

locals {
  s          = var.shared
  e          = local.s.emulator # what an emulator lacks: all false on AWS (root variables.tf)
  is_primary = var.region == local.s.primary_region
  # The primary region uses the primary key; every other region a replica of it (on an
  # emulator without multi-region keys, a key of its own: emulator.tf).
  key_arn = local.is_primary ? local.s.kms_primary_key_arn : (
    local.e.lacks_kms_replicas ? aws_kms_key.regional[0].arn : aws_kms_replica_key.moebi[0].arn
  )

  functions       = toset(["chat-send", "moebi-reply", "stock-add", "stock-status", "front-door", "sockets", "push"])
  sqs_functions   = toset(["chat-send", "stock-add"])
  event_functions = toset(["moebi-reply", "stock-status"])
  # The functions that handle events (and dead-letter them); the front door answers HTTP
  # synchronously instead: no queue, no rule, no DLQ.
  handler_functions = setunion(local.sqs_functions, local.event_functions)
  # Lambda's retries of an asynchronous event (EventBridge -> moebi-reply, stock-status).
  async_retries = 2

  # The functions with a queue in front: the SQS-fed ones; on an emulator that cannot invoke
  # Lambda also the EventBridge-invoked ones, each behind a stand-in queue (emulator.tf).
  queue_functions = local.e.lacks_lambda_invoke ? local.handler_functions : local.sqs_functions
  # The functions an SQS event source mapping feeds (none on such an emulator: `moebi pump`).
  mapped_functions = local.e.lacks_lambda_invoke ? toset([]) : local.sqs_functions

  queue_rules    = { for name, rule in var.rules : name => rule if rule.target.kind == "queue" || (rule.target.kind == "function" && local.e.lacks_lambda_invoke) }
  function_rules = { for name, rule in var.rules : name => rule if rule.target.kind == "function" && !local.e.lacks_lambda_invoke }
  bus_rules      = { for name, rule in var.rules : name => rule if rule.target.kind == "bus" }

  # Dead-letter queues: one per event handler (`moebi-<function>-dlq`; for a queue-fed function it
  # is its queue's redrive target) and, if the region forwards, one for undeliverable forwards.
  dlq_keys = concat(tolist(local.handler_functions), length(local.bus_rules) > 0 ? ["forward"] : [])

  # The rules whose EventBridge target may dead-letter into each DLQ.
  dlq_rules = {
    for d in local.dlq_keys : d => sort(d == "forward" ? keys(local.bus_rules) : [
      for name, rule in var.rules : name if rule.target.kind != "bus" && rule.target.name == d
    ])
  }

  forwarders = [for r in local.s.forwarders_to[var.region] : local.s.forward_role_arns[r]]
  # Every principal that may put events on this bus: this region's front door (signed-in
  # callers' events) and moebi-reply (the bots' replies), and the forwarding roles of the
  # regions whose rules target this bus. The bus policy denies everyone else.
  bus_writers = sort(concat(
    [local.s.function_role_arns[var.region]["front-door"], local.s.function_role_arns[var.region]["moebi-reply"]],
    local.forwarders,
  ))

  # ARNs spelled from the resources' names, exactly as AWS forms them. Referencing the name
  # keeps the dependency on the resource while the ARN stays known at plan time.
  arn_head     = "arn:${local.s.partition}"
  arn_tail     = "${var.region}:${local.s.account_id}"
  queue_arn    = { for f, q in aws_sqs_queue.main : f => "${local.arn_head}:sqs:${local.arn_tail}:${q.name}" }
  dlq_arn      = { for k, q in aws_sqs_queue.dlq : k => "${local.arn_head}:sqs:${local.arn_tail}:${q.name}" }
  function_arn = { for f, fn in aws_lambda_function.fn : f => "${local.arn_head}:lambda:${local.arn_tail}:function:${fn.function_name}" }
  rule_arn     = { for n, r in aws_cloudwatch_event_rule.moebi : n => "${local.arn_head}:events:${local.arn_tail}:rule/${r.event_bus_name}/${r.name}" }
  bus_arn      = "${local.arn_head}:events:${local.arn_tail}:event-bus/${aws_cloudwatch_event_bus.moebi.name}"
  topic_arn    = "${local.arn_head}:sns:${local.arn_tail}:${aws_sns_topic.alarms.name}"
}

resource "aws_kms_replica_key" "moebi" {
  count                   = local.is_primary || local.e.lacks_kms_replicas ? 0 : 1
  description             = "moebi: replica in ${var.region} of the multi-region key"
  primary_key_arn         = local.s.kms_primary_key_arn
  deletion_window_in_days = 30
  policy                  = local.s.key_policies[var.region]
}

resource "aws_kms_alias" "moebi" {
  name          = "alias/moebi"
  target_key_id = local.key_arn
}

# --- The bus ----------------------------------------------------------------------------------

resource "aws_cloudwatch_event_bus" "moebi" {
  name = local.s.bus_name
}

# Only moebi writes to this bus. In one account an Allow alone would not be enough: any
# principal of the account whose identity policy allows events:PutEvents could put events
# here. So the policy denies PutEvents to every principal but moebi's own roles (local
# bus_writers; aws:PrincipalArn of a role's session is the role's ARN), and allows the
# forwarding roles of the other regions (a cross-region put needs the target bus's consent).
# Every event on the bus was then stamped by the front door or made by moebi itself. (The
# deny also covers every principal outside the account: none of them is one of these roles.)
resource "aws_cloudwatch_event_bus_policy" "moebi" {
  event_bus_name = aws_cloudwatch_event_bus.moebi.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(local.forwarders) > 0 ? [{
        Sid       = "ForwardsFromOtherRegions"
        Effect    = "Allow"
        Principal = { AWS = sort(local.forwarders) }
        Action    = "events:PutEvents"
        Resource  = local.bus_arn
      }] : [],
      [{
        Sid       = "OnlyMoebiWrites"
        Effect    = "Deny"
        Principal = "*"
        Action    = "events:PutEvents"
        Resource  = local.bus_arn
        Condition = { ArnNotEquals = { "aws:PrincipalArn" = local.bus_writers } }
      }],
    )
  })
}

# The policy used to exist only where some region forwarded (count); it now exists everywhere.
moved {
  from = aws_cloudwatch_event_bus_policy.moebi[0]
  to   = aws_cloudwatch_event_bus_policy.moebi
}

resource "aws_cloudwatch_event_rule" "moebi" {
  for_each       = var.rules
  name           = "moebi-${each.key}"
  description    = "moebi: ${each.value.pattern["detail-type"][0]} to the ${each.value.target.kind} ${each.value.target.name}"
  event_bus_name = aws_cloudwatch_event_bus.moebi.name
  event_pattern  = jsonencode(each.value.pattern)
}

resource "aws_cloudwatch_event_target" "queue" {
  for_each       = local.queue_rules
  rule           = aws_cloudwatch_event_rule.moebi[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.moebi.name
  target_id      = "queue"
  arn            = local.queue_arn[each.value.target.name]

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = local.dlq_arn[each.value.target.name]
  }
}

resource "aws_cloudwatch_event_target" "function" {
  for_each       = local.function_rules
  rule           = aws_cloudwatch_event_rule.moebi[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.moebi.name
  target_id      = "function"
  arn            = local.function_arn[each.value.target.name]

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }

  dead_letter_config {
    arn = local.dlq_arn[each.value.target.name]
  }

  depends_on = [aws_lambda_permission.rule]
}

resource "aws_cloudwatch_event_target" "bus" {
  for_each       = local.bus_rules
  rule           = aws_cloudwatch_event_rule.moebi[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.moebi.name
  target_id      = "bus-${each.value.target.name}"
  arn            = local.s.bus_arns[each.value.target.name]
  role_arn       = local.s.forward_role_arns[var.region]

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = local.dlq_arn["forward"]
  }
}
