# --- The front door: the region's HTTP API -------------------------------------------------------
# People and stores call their region's HTTP API with a token of the user pool (signin.tf in the
# root); its JWT authorizer proves the token on EVERY route (there is no `$default` route, so an
# unknown route is a 404 and never reaches the function), and the front door takes the caller
# from the token's claims (payload format 2.0: requestContext.authorizer.jwt.claims).

locals {
  # Every route of the front door; all go to the one function, through one integration.
  api_routes = toset(["POST /messages", "GET /inbox", "POST /stock", "POST /stock/status"])
}

resource "aws_apigatewayv2_api" "front_door" {
  name          = "moebi-front-door"
  description   = "moebi: the front door of ${var.region} (signed-in people and stores)"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.front_door.id
  name             = "moebi-user-pool"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = local.s.signin.issuer
    audience = local.s.signin.audience
  }
}

resource "aws_apigatewayv2_integration" "front_door" {
  api_id                 = aws_apigatewayv2_api.front_door.id
  description            = "moebi-front-door (${var.region})"
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = local.function_arn["front-door"]
  payload_format_version = "2.0"
  # API Gateway's maximum; the function's own timeout is shorter or equal.
  timeout_milliseconds = 30000
}

resource "aws_apigatewayv2_route" "front_door" {
  for_each           = local.api_routes
  api_id             = aws_apigatewayv2_api.front_door.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.front_door.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.jwt.id
}

# The web page and its settings (src/lambda/page.rs), public: the page signs in itself, and every
# call it then makes carries the token.
resource "aws_apigatewayv2_route" "public" {
  #checkov:skip=CKV_AWS_309:GET / and GET /config.json serve the static web page and its public settings (socket URL, the pool's app client id): nothing a token would protect; the page's calls go to the JWT-authorized routes.
  for_each           = toset(["GET /", "GET /config.json"])
  api_id             = aws_apigatewayv2_api.front_door.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.front_door.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "${local.s.api_access_log_prefix}front-door"
  retention_in_days = local.s.log_retention_days
  kms_key_id        = local.key_arn
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.front_door.id
  name        = "$default"
  auto_deploy = true

  # One JSON line per request: who (the token's subject and username), what, the answer.
  access_log_settings {
    destination_arn = "${local.arn_head}:logs:${local.arn_tail}:log-group:${aws_cloudwatch_log_group.api_access.name}"
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTimeEpoch"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      authorizerError    = "$context.authorizer.error"
      sub                = "$context.authorizer.claims.sub"
      username           = "$context.authorizer.claims.username"
      sourceIp           = "$context.identity.sourceIp"
    })
  }

  default_route_settings {
    throttling_rate_limit    = local.s.api_throttling.rate_limit
    throttling_burst_limit   = local.s.api_throttling.burst_limit
    detailed_metrics_enabled = true
  }
}

# Only this region's HTTP API may invoke the front door (any stage, any route of it).
resource "aws_lambda_permission" "api" {
  statement_id  = "moebi-http-api"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["front-door"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${local.arn_head}:execute-api:${local.arn_tail}:${aws_apigatewayv2_api.front_door.id}/*/*"
}
