# Global resources: the primary multi-region KMS key, the DynamoDB global table, IAM roles.
# They live with the default provider, in the primary region (the topology's first region).

locals {
  # One key policy per region (the primary key's and each replica's). The first statement is
  # AWS's default key policy: it lets the account's IAM policies govern the key (without it the
  # key can become unmanageable). The other statements admit the services that encrypt with it,
  # each tied to this account (and, for CloudWatch Logs, to this region's log groups).
  key_policies = {
    for r in local.regions : r => jsonencode({
      Version = "2012-10-17"
      Statement = [
        {
          Sid       = "AccountAdministersTheKeyThroughIam"
          Effect    = "Allow"
          Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
          Action    = "kms:*"
          Resource  = "*"
        },
        {
          Sid       = "EventBridgeDeliversToEncryptedQueues"
          Effect    = "Allow"
          Principal = { Service = "events.amazonaws.com" }
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = "*"
          Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
        },
        {
          Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
          Effect    = "Allow"
          Principal = { Service = "cloudwatch.amazonaws.com" }
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = "*"
          Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
        },
        {
          Sid       = "CloudWatchLogsEncryptsTheFunctionLogs"
          Effect    = "Allow"
          Principal = { Service = "logs.${r}.amazonaws.com" }
          Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
          Resource  = "*"
          # The functions' log groups and the HTTP APIs' access logs (modules/region/api.tf).
          Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = [
            "arn:${local.partition}:logs:${r}:${local.account_id}:log-group:/aws/lambda/moebi-*",
            "arn:${local.partition}:logs:${r}:${local.account_id}:log-group:${local.api_access_log_prefix}*",
          ] } }
        },
      ]
    })
  }
}

resource "aws_kms_key" "moebi" {
  description             = "moebi: DynamoDB table, SQS queues, logs, Lambda environment (primary of a multi-region key)"
  multi_region            = true
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policies[local.primary_region]
}

resource "aws_dynamodb_table" "moebi" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  # Global tables (version 2019.11.21) replicate through streams.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Idempotency records carry `expires_at` (epoch seconds) and expire.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.moebi.arn
  }

  # On an emulator without global tables, each region module makes its own table instead.
  dynamic "replica" {
    for_each = var.emulator_lacks_global_tables ? [] : [for r in local.regions : r if r != local.primary_region]
    content {
      region_name            = replica.value
      kms_key_arn            = lookup(local.region_key_arns, replica.value, null) # null only when unwired: output "regions" stops the plan
      point_in_time_recovery = true
      propagate_tags         = true
    }
  }
}

# --- Function roles: one per function and region, each allowed only what that function does,
# on that region's resources.

locals {
  dynamodb_writes = ["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:TransactWriteItems", "dynamodb:UpdateItem"]
  dynamodb_reads  = ["dynamodb:GetItem", "dynamodb:Query"]
  sqs_consume     = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]

  function_roles = {
    for pair in setproduct(local.regions, local.functions) : "${pair[0]}/${pair[1]}" => {
      region   = pair[0]
      function = pair[1]
      name     = "moebi-${pair[1]}-${pair[0]}"
    }
  }

  # What each function does besides logging, tracing and sending to its DLQ.
  function_statements = {
    for key, fr in local.function_roles : key => concat(
      contains(local.live_functions, fr.function) ? [] : [{
        Sid    = "Table"
        Effect = "Allow"
        Action = sort(contains(["chat-send", "stock-status", "front-door"], fr.function) ? concat(local.dynamodb_writes, local.dynamodb_reads) : local.dynamodb_writes)
        # The table's replica in the function's own region: each region's functions use their
        # local replica only.
        Resource = [local.arn[fr.region].table]
      }],
      contains(local.queue_functions, fr.function) ? [{
        Sid      = "ConsumeQueue"
        Effect   = "Allow"
        Action   = local.sqs_consume
        Resource = [local.arn[fr.region].queue[fr.function]]
      }] : [],
      contains(local.event_functions, fr.function) ? [{
        # The on-failure destination of an EventBridge-invoked function. (SQS-fed functions
        # need none: SQS itself moves a failing message to the DLQ.)
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [local.arn[fr.region].dlq[fr.function]]
      }] : [],
      fr.function == "sockets" ? [{
        # $connect records a connection, $disconnect forgets it.
        Sid      = "Connections"
        Effect   = "Allow"
        Action   = ["dynamodb:DeleteItem", "dynamodb:PutItem"]
        Resource = [local.arn[fr.region].connections]
      }] : [],
      fr.function == "push" ? [
        {
          # A recipient's connections; a gone one deleted.
          Sid      = "Connections"
          Effect   = "Allow"
          Action   = ["dynamodb:DeleteItem", "dynamodb:Query"]
          Resource = [local.arn[fr.region].connections]
        },
        {
          # The event source mapping reads the region's inbox stream with the function's role.
          Sid      = "InboxStream"
          Effect   = "Allow"
          Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
          Resource = ["${local.arn[fr.region].table}/stream/*"]
        },
        {
          Sid      = "PostToSockets"
          Effect   = "Allow"
          Action   = ["execute-api:ManageConnections"]
          Resource = [local.arn[fr.region].manage_connections]
        },
      ] : [],
      fr.function == "moebi-reply" ? [{
        Sid      = "PublishReplies"
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = [local.arn[fr.region].bus]
      }] : [],
      fr.function == "front-door" ? [{
        # The events of signed-in callers, on their region's bus (whose policy denies
        # PutEvents to every principal but moebi's own roles: modules/region/main.tf).
        Sid      = "PublishForCallers"
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = [local.arn[fr.region].bus]
      }] : [],
    )
  }

  function_policies = {
    for key, fr in local.function_roles : key => {
      Version = "2012-10-17"
      Statement = concat(local.function_statements[key], [
        {
          Sid      = "Logs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = ["${local.arn[fr.region].logs[fr.function]}:*"]
        },
        {
          # The region's replica of the key: queue messages, Lambda environment, DLQ.
          Sid      = "Key"
          Effect   = "Allow"
          Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource = [local.key_arns[fr.region]]
        },
        {
          # X-Ray has no resource-level permissions for these two actions: "*" is the only
          # resource they accept (see the Service Authorization Reference for X-Ray).
          Sid      = "Tracing"
          Effect   = "Allow"
          Action   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
          Resource = ["*"]
        },
      ])
    }
  }
}

resource "aws_iam_role" "function" {
  for_each    = local.function_roles
  name        = each.value.name
  description = "moebi ${each.value.function} in ${each.value.region}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_roles
  name     = "least-privilege"
  role     = aws_iam_role.function[each.key].name # the name (= its id): the ARN is known at plan
  policy   = jsonencode(local.function_policies[each.key])
}

# --- Forwarding roles: the rules of a region that target another region's bus act with this
# role, allowed only events:PutEvents on exactly those buses, assumable only by those rules.

locals {
  forwarding_regions = [for r in local.regions : r if length(local.forwards_to[r]) > 0]
}

resource "aws_iam_role" "forward" {
  for_each    = toset(local.forwarding_regions)
  name        = "moebi-forward-${each.key}"
  description = "moebi: rules of ${each.key} forwarding events to the buses of ${join(", ", local.forwards_to[each.key])}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnEquals    = { "aws:SourceArn" = [for name, rule in local.rules[each.key] : local.arn[each.key].rule[name] if rule.target.kind == "bus"] }
      }
    }]
  })
}

resource "aws_iam_role_policy" "forward" {
  for_each = toset(local.forwarding_regions)
  name     = "put-events-on-target-buses"
  role     = aws_iam_role.forward[each.key].name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ForwardToHomeRegions"
      Effect   = "Allow"
      Action   = ["events:PutEvents"]
      Resource = [for r2 in local.forwards_to[each.key] : local.arn[r2].bus]
    }]
  })
}
