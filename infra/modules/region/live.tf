# --- Live delivery: the region's WebSocket API, its connections, the pushes ---------------------
# A client opens a socket at the region's WebSocket API with a token of the pool (`?token=`: a
# browser cannot set headers on a WebSocket). API Gateway has no JWT authorizer for WebSocket
# APIs, so `$connect` goes through a Lambda REQUEST authorizer: the `sockets` function verifies
# the token itself against the pool's JWKS (src/live/token.rs) and names the participant, and
# its `$connect` route records the connection in the region's connections table. The `push`
# function reads the region's stream of the global table, which carries the inbox entries
# written here and those replicated from the other regions, and posts each new entry to its
# recipient's connections in this region (src/live/push.rs).

locals {
  sockets_stage = "live"
  # The WebSocket API stage's management endpoint (`@connections`), which `push` posts to. On
  # an emulator, under its URL (`requestContext.domainName` there carries no port).
  sockets_management_url = local.s.emulator_endpoint != null ? "${local.s.emulator_endpoint}/_aws/execute-api/${aws_apigatewayv2_api.sockets.id}/${local.sockets_stage}" : "https://${aws_apigatewayv2_api.sockets.id}.execute-api.${var.region}.amazonaws.com/${local.sockets_stage}"
  # Where clients connect.
  sockets_url = local.s.emulator_endpoint != null ? "${replace(local.s.emulator_endpoint, "http", "ws")}/_aws/execute-api/${aws_apigatewayv2_api.sockets.id}/${local.sockets_stage}" : "wss://${aws_apigatewayv2_api.sockets.id}.execute-api.${var.region}.amazonaws.com/${local.sockets_stage}"
  # The sockets function's invocation URI, spelled from its name: the WebSocket API's
  # integration and authorizer must not depend on the functions' resource, whose `push` and
  # `front-door` read this API's URLs (a cycle otherwise).
  sockets_function_arn = "${local.arn_head}:lambda:${local.arn_tail}:function:moebi-sockets"
  sockets_invoke_uri   = "${local.arn_head}:apigateway:${var.region}:lambda:path/2015-03-31/functions/${local.sockets_function_arn}/invocations"
  # The inbox stream of this region: the global table's replica here, or this region's own
  # table on an emulator without global tables (emulator.tf).
  inbox_stream_arn = local.e.lacks_global_tables && !local.is_primary ? aws_dynamodb_table.regional[0].stream_arn : var.inbox_stream_arn
}

# Connection id -> participant, in this region only (a connection id means nothing elsewhere).
# Partition key: the participant, so that a push reads one participant's sockets with one Query.
resource "aws_dynamodb_table" "connections" {
  name                        = local.s.connections_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "participant"
  range_key                   = "connection"
  deletion_protection_enabled = local.s.deletion_protection

  attribute {
    name = "participant"
    type = "S"
  }

  attribute {
    name = "connection"
    type = "S"
  }

  # API Gateway closes every connection after 2 hours: a record expires then
  # (src/live/mod.rs CONNECTION_TTL_SECONDS); a 410 or $disconnect deletes it sooner.
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

resource "aws_apigatewayv2_api" "sockets" {
  name                       = "moebi-sockets"
  description                = "moebi: live delivery in ${var.region} (signed-in participants' sockets)"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"
}

resource "aws_apigatewayv2_authorizer" "sockets" {
  api_id           = aws_apigatewayv2_api.sockets.id
  name             = "moebi-user-pool-token"
  authorizer_type  = "REQUEST"
  authorizer_uri   = local.sockets_invoke_uri
  identity_sources = ["route.request.querystring.token"]
}

resource "aws_apigatewayv2_integration" "sockets" {
  api_id             = aws_apigatewayv2_api.sockets.id
  description        = "moebi-sockets (${var.region})"
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = local.sockets_invoke_uri
}

resource "aws_apigatewayv2_route" "connect" {
  api_id             = aws_apigatewayv2_api.sockets.id
  route_key          = "$connect"
  target             = "integrations/${aws_apigatewayv2_integration.sockets.id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.sockets.id
}

# $disconnect forgets the connection; $default takes the clients' heartbeats
# (`{"action":"ping"}`), which keep a socket inside API Gateway's 10-minute idle limit. Only
# $connect can carry an authorizer: these run on a connection it admitted.
resource "aws_apigatewayv2_route" "sockets" {
  #checkov:skip=CKV_AWS_309:API Gateway accepts an authorizer only on a WebSocket API's $connect route; $disconnect and $default run on a connection the $connect authorizer admitted.
  for_each           = toset(["$disconnect", "$default"])
  api_id             = aws_apigatewayv2_api.sockets.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.sockets.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "sockets_access" {
  name              = "${local.s.api_access_log_prefix}sockets"
  retention_in_days = local.s.log_retention_days
  kms_key_id        = local.key_arn
}

resource "aws_apigatewayv2_stage" "sockets" {
  #checkov:skip=CKV2_AWS_51:Clients are people's browsers and CLIs, which hold no client certificate; $connect checks their Cognito token (the REQUEST authorizer), as the HTTP API's JWT authorizer does.
  api_id      = aws_apigatewayv2_api.sockets.id
  name        = local.sockets_stage
  auto_deploy = true

  access_log_settings {
    destination_arn = "${local.arn_head}:logs:${local.arn_tail}:log-group:${aws_cloudwatch_log_group.sockets_access.name}"
    format = jsonencode({
      requestId       = "$context.requestId"
      requestTime     = "$context.requestTimeEpoch"
      routeKey        = "$context.routeKey"
      eventType       = "$context.eventType"
      connectionId    = "$context.connectionId"
      status          = "$context.status"
      authorizerError = "$context.authorizer.error"
      participant     = "$context.authorizer.principalId"
    })
  }

  default_route_settings {
    throttling_rate_limit  = local.s.api_throttling.rate_limit
    throttling_burst_limit = local.s.api_throttling.burst_limit
  }
}

# Only this region's WebSocket API may invoke `sockets` (as its authorizer and its routes).
resource "aws_lambda_permission" "sockets" {
  statement_id  = "moebi-websocket-api"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["sockets"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${local.arn_head}:execute-api:${local.arn_tail}:${aws_apigatewayv2_api.sockets.id}/*"
}

# The inbox stream -> push. Only new inbox entries reach the function (the filter), each batch
# answering which records failed (ReportBatchItemFailures: a throttled or failed post is tried
# again without holding up the others; a gone connection is deleted, not retried). A push older
# than a minute is not worth retrying: the client reads its inbox after any reconnect.
resource "aws_lambda_event_source_mapping" "push" {
  event_source_arn                   = local.inbox_stream_arn
  function_name                      = "${local.arn_head}:lambda:${local.arn_tail}:function:${aws_lambda_function.fn["push"].function_name}"
  starting_position                  = "LATEST"
  batch_size                         = 10
  maximum_batching_window_in_seconds = 0
  maximum_retry_attempts             = 3
  maximum_record_age_in_seconds      = 60
  bisect_batch_on_function_error     = true
  function_response_types            = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["INSERT"]
        dynamodb  = { Keys = { pk = { S = [{ prefix = "inbox#" }] } } }
      })
    }
  }
}
