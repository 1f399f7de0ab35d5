# --- The seven functions: four event handlers, the front door (api.tf), sockets and push (live.tf)

resource "aws_cloudwatch_log_group" "fn" {
  for_each          = local.functions
  name              = "/aws/lambda/moebi-${each.key}"
  retention_in_days = local.s.log_retention_days
  kms_key_id        = local.key_arn
}

locals {
  # What some functions read besides the region, table and bus (src/lambda/live.rs, src/front).
  function_environment = {
    sockets = {
      MOEBI_CONNECTIONS   = aws_dynamodb_table.connections.name
      MOEBI_JWT_ISSUER    = local.s.signin.issuer
      MOEBI_JWT_CLIENT_ID = local.s.signin.client_id
      MOEBI_JWKS_URL      = local.s.signin.jwks_url
    }
    push = {
      MOEBI_CONNECTIONS = aws_dynamodb_table.connections.name
      MOEBI_SOCKETS_URL = local.sockets_management_url
    }
    # The web page the front door serves (GET /) signs in and connects with these.
    front-door = {
      MOEBI_SOCKETS_URL   = local.sockets_url
      MOEBI_COGNITO_URL   = local.s.signin.cognito_url
      MOEBI_JWT_CLIENT_ID = local.s.signin.client_id
    }
  }
  zips = { for f in local.functions : f => "${local.s.artifacts_dir}/${f}/bootstrap.zip" }
}

resource "aws_lambda_function" "fn" {
  #checkov:skip=CKV_AWS_116:Async failures (moebi-reply, stock-status) go to an on-failure destination (aws_lambda_function_event_invoke_config), which supersedes a function DLQ; SQS-fed functions fail back to their queue, whose redrive policy moves the record to its DLQ; the front door is invoked synchronously by its HTTP API, so a failure is the caller's HTTP error and a DLQ would never receive anything.
  #checkov:skip=CKV_AWS_117:No VPC: the functions only call regional AWS APIs (DynamoDB, EventBridge, SQS); a VPC would need NAT or interface endpoints, which cost money at rest, for no isolation gain.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer step in the build; `make build` zips are deployed by the same pipeline that builds them. Revisit when artifacts cross a trust boundary.
  for_each      = local.functions
  function_name = "moebi-${each.key}"
  description   = "moebi ${each.key} (${var.region})"
  role          = local.s.function_role_arns[var.region][each.key]
  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  # Built by `make build`. Plan works before the zips exist; apply needs them.
  filename                       = local.zips[each.key]
  source_code_hash               = try(filebase64sha256(local.zips[each.key]), null)
  timeout                        = local.s.queues.function_timeout_seconds
  memory_size                    = local.s.memory_mb
  reserved_concurrent_executions = local.s.reserved_concurrency
  kms_key_arn                    = local.key_arn

  tracing_config {
    mode = "Active"
  }

  # JSON lines, which Logs Insights reads field by field; Lambda hands the format and level to
  # the functions as AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL (moebi::lambda honours both).
  logging_config {
    log_format            = "JSON"
    application_log_level = local.s.log_level
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.fn[each.key].name
  }

  environment {
    variables = merge({
      MOEBI_REGION = var.region
      MOEBI_TABLE  = local.s.table_name
      MOEBI_BUS    = local.s.bus_name
    }, lookup(local.function_environment, each.key, {}))
  }
}

# The EventBridge-invoked functions: a failed event, after Lambda's retries, goes to the DLQ.
resource "aws_lambda_function_event_invoke_config" "fn" {
  for_each                     = local.event_functions
  function_name                = aws_lambda_function.fn[each.key].function_name
  maximum_retry_attempts       = local.async_retries
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = local.dlq_arn[each.key]
    }
  }
}

# Only the rule that targets a function may invoke it.
resource "aws_lambda_permission" "rule" {
  for_each       = local.function_rules
  statement_id   = "moebi-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.fn[each.value.target.name].function_name
  principal      = "events.amazonaws.com"
  source_arn     = local.rule_arn[each.key]
  source_account = local.s.account_id
}

resource "aws_lambda_event_source_mapping" "queue" {
  for_each                = local.mapped_functions
  event_source_arn        = local.queue_arn[each.key]
  function_name           = local.function_arn[each.key]
  batch_size              = local.s.queues.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.s.reserved_concurrency
  }
}
