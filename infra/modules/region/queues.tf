# --- Queues: one in front of each writing function, and the dead-letter queues ---------------

resource "aws_sqs_queue" "dlq" {
  for_each                          = toset(local.dlq_keys)
  name                              = "moebi-${each.key}-dlq"
  message_retention_seconds         = 1209600 # 14 days, the maximum: time to look and redrive
  kms_master_key_id                 = local.key_arn
  kms_data_key_reuse_period_seconds = 300
}

# (On an emulator that cannot invoke Lambda, also the stand-in queues of the EventBridge-invoked
# functions, with the settings of an asynchronous invocation: emulator.tf.)
resource "aws_sqs_queue" "main" {
  for_each                          = local.queue_functions
  name                              = "moebi-${each.key}"
  visibility_timeout_seconds        = try(local.standin[each.key].visibility_timeout_seconds, local.s.queues.visibility_timeout_seconds)
  message_retention_seconds         = 345600 # 4 days
  kms_master_key_id                 = local.key_arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = "${local.arn_head}:sqs:${local.arn_tail}:${aws_sqs_queue.dlq[each.key].name}"
    maxReceiveCount     = try(local.standin[each.key].max_receive_count, local.s.queues.max_receive_count)
  })
}

# A queue's DLQ takes redrives from that queue only.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each  = local.e.lacks_sqs_redrive_allow_policy ? toset([]) : local.queue_functions
  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn[each.key]]
  })
}

locals {
  # The rules allowed to send into each queue: its own rule(s), nothing else.
  queue_senders = {
    for q in local.queue_functions : q => [for name, rule in local.queue_rules : local.rule_arn[name] if rule.target.name == q]
  }
}

resource "aws_sqs_queue_policy" "main" {
  for_each  = { for q, arns in local.queue_senders : q => arns if length(arns) > 0 }
  queue_url = aws_sqs_queue.main[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "OnlyItsRule"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = local.queue_arn[each.key]
        Condition = { ArnEquals = { "aws:SourceArn" = each.value } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
        Resource  = local.queue_arn[each.key]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

# EventBridge dead-letters into a DLQ only for the rules whose target it backs.
resource "aws_sqs_queue_policy" "dlq" {
  for_each  = { for d, names in local.dlq_rules : d => names if length(names) > 0 }
  queue_url = aws_sqs_queue.dlq[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DeadLettersOfItsRules"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = local.dlq_arn[each.key]
        Condition = { ArnEquals = { "aws:SourceArn" = [for name in each.value : local.rule_arn[name]] } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"]
        Resource  = local.dlq_arn[each.key]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}
