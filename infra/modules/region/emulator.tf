# --- What only a deployment on an AWS API emulator makes (root variables emulator_lacks_*) ----
# Each stands in for something the emulator does not have; on AWS none of it exists.

# emulator_lacks_kms_replicas: a single-region key of this region instead of the replica of the
# multi-region key, with the same key policy.
resource "aws_kms_key" "regional" {
  count                   = !local.is_primary && local.e.lacks_kms_replicas ? 1 : 0
  description             = "moebi: key of ${var.region} (emulator: stands in for the replica of the multi-region key)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.s.key_policies[var.region]
}

# emulator_lacks_global_tables: this region's own table, as the replica would be (same keys,
# stream, TTL, PITR; encrypted with this region's key). moebi's engine replicates between them.
resource "aws_dynamodb_table" "regional" {
  count                       = !local.is_primary && local.e.lacks_global_tables ? 1 : 0
  name                        = local.s.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = local.s.deletion_protection
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.key_arn
  }
}

locals {
  # emulator_lacks_lambda_invoke: the stand-in queue of an EventBridge-invoked function holds
  # each event as an asynchronous invocation would: tried 1 + async_retries times (then the
  # function's DLQ, its on-failure destination on AWS), a minute apart. The same settings as
  # `moebi setup` (src/engine/pump.rs: ASYNC_ATTEMPTS, ASYNC_RETRY_SECONDS).
  standin = {
    for f in local.event_functions : f => {
      visibility_timeout_seconds = 60
      max_receive_count          = 1 + local.async_retries
    } if local.e.lacks_lambda_invoke
  }
}
