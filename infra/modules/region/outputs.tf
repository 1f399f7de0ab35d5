output "region" {
  description = "The region of this instance."
  value       = var.region
}

output "provider_region" {
  description = "The region of the provider this instance was given (the root checks it is `region`)."
  value       = data.aws_region.current.name
}

output "kms_key_arn" {
  description = "The KMS key of this region (the primary key or its replica)."
  value       = local.key_arn
}

output "bus_arn" {
  description = "ARN of this region's `moebi` bus."
  value       = aws_cloudwatch_event_bus.moebi.arn
}

output "bus_policy" {
  description = "The bus policy, decoded."
  value       = jsondecode(aws_cloudwatch_event_bus_policy.moebi.policy)
}

output "bus_writers" {
  description = "The only principals (role ARNs) the bus policy lets put events on this bus."
  value       = local.bus_writers
}

output "queue_urls" {
  description = "Queue URLs by function."
  value       = { for f, q in aws_sqs_queue.main : f => q.url }
}

output "queue_arns" {
  description = "Queue ARNs by function."
  value       = local.queue_arn
}

output "queues" {
  description = "Each queue's name, visibility timeout and decoded redrive policy."
  value = {
    for f, q in aws_sqs_queue.main : f => {
      name                       = q.name
      visibility_timeout_seconds = q.visibility_timeout_seconds
      redrive                    = jsondecode(q.redrive_policy)
    }
  }
}

output "dlq_urls" {
  description = "Dead-letter queue URLs (by function, and `forward`)."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "dlq_arns" {
  description = "Dead-letter queue ARNs (by function, and `forward`)."
  value       = local.dlq_arn
}

output "function_names" {
  description = "Function names by short name."
  value       = { for f, fn in aws_lambda_function.fn : f => fn.function_name }
}

output "function_arns" {
  description = "Function ARNs by short name."
  value       = local.function_arn
}

output "routes" {
  description = "Every rule of this bus as deployed: decoded pattern, target kind and ARN, target DLQ."
  value = merge(
    {
      for name, t in aws_cloudwatch_event_target.queue : name => {
        rule       = t.rule
        pattern    = jsondecode(aws_cloudwatch_event_rule.moebi[name].event_pattern)
        kind       = "queue"
        target_arn = t.arn
        dlq_arn    = t.dead_letter_config[0].arn
        role_arn   = null
      }
    },
    {
      for name, t in aws_cloudwatch_event_target.function : name => {
        rule       = t.rule
        pattern    = jsondecode(aws_cloudwatch_event_rule.moebi[name].event_pattern)
        kind       = "function"
        target_arn = t.arn
        dlq_arn    = t.dead_letter_config[0].arn
        role_arn   = null
      }
    },
    {
      for name, t in aws_cloudwatch_event_target.bus : name => {
        rule       = t.rule
        pattern    = jsondecode(aws_cloudwatch_event_rule.moebi[name].event_pattern)
        kind       = "bus"
        target_arn = t.arn
        dlq_arn    = t.dead_letter_config[0].arn
        role_arn   = t.role_arn
      }
    },
  )
}

output "rule_arns" {
  description = "Rule ARNs by rule name."
  value       = local.rule_arn
}

output "invoke_permissions" {
  description = "Who may invoke which function: rule name => { function, source_arn }."
  value       = { for name, p in aws_lambda_permission.rule : name => { function = p.function_name, source_arn = p.source_arn, principal = p.principal } }
}

output "event_source_mappings" {
  description = "SQS -> function mappings by function."
  value = {
    for f, m in aws_lambda_event_source_mapping.queue : f => {
      queue_arn               = m.event_source_arn
      function                = m.function_name
      batch_size              = m.batch_size
      function_response_types = m.function_response_types
    }
  }
}

output "on_failure_destinations" {
  description = "On-failure destination of each EventBridge-invoked function."
  value       = { for f, c in aws_lambda_function_event_invoke_config.fn : f => c.destination_config[0].on_failure[0].destination }
}

output "alarm_names" {
  description = "Every alarm of this region."
  value       = concat([for a in aws_cloudwatch_metric_alarm.dlq : a.alarm_name], [for a in aws_cloudwatch_metric_alarm.errors : a.alarm_name])
}

output "alarm_topic_arn" {
  description = "The SNS topic the alarms notify."
  value       = local.topic_arn
}

output "dashboard" {
  description = "The CloudWatch dashboard of this region: its name and its widgets (decoded)."
  value = {
    name    = aws_cloudwatch_dashboard.moebi.dashboard_name
    widgets = jsondecode(aws_cloudwatch_dashboard.moebi.dashboard_body).widgets
  }
}

output "api" {
  description = "The region's HTTP API (the front door): id, endpoint, JWT authorizer, routes, stage, who may invoke the function."
  value = {
    id       = aws_apigatewayv2_api.front_door.id
    endpoint = aws_apigatewayv2_api.front_door.api_endpoint
    authorizer = {
      id               = aws_apigatewayv2_authorizer.jwt.id
      type             = aws_apigatewayv2_authorizer.jwt.authorizer_type
      identity_sources = aws_apigatewayv2_authorizer.jwt.identity_sources
      issuer           = aws_apigatewayv2_authorizer.jwt.jwt_configuration[0].issuer
      audience         = aws_apigatewayv2_authorizer.jwt.jwt_configuration[0].audience
    }
    integration = {
      id                     = aws_apigatewayv2_integration.front_door.id
      type                   = aws_apigatewayv2_integration.front_door.integration_type
      uri                    = aws_apigatewayv2_integration.front_door.integration_uri
      payload_format_version = aws_apigatewayv2_integration.front_door.payload_format_version
    }
    routes = {
      for k, r in aws_apigatewayv2_route.front_door : k => {
        route_key          = r.route_key
        authorization_type = r.authorization_type
        authorizer_id      = r.authorizer_id
        target             = r.target
      }
    }
    # Served without a token: the web page and its settings (src/lambda/page.rs).
    public_routes = { for k, r in aws_apigatewayv2_route.public : k => r.authorization_type }
    stage = {
      name           = aws_apigatewayv2_stage.default.name
      auto_deploy    = aws_apigatewayv2_stage.default.auto_deploy
      access_log_arn = aws_apigatewayv2_stage.default.access_log_settings[0].destination_arn
      rate_limit     = aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit
      burst_limit    = aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit
    }
    invoke_permission = {
      function   = aws_lambda_permission.api.function_name
      principal  = aws_lambda_permission.api.principal
      source_arn = aws_lambda_permission.api.source_arn
    }
  }
}

output "live" {
  description = "Live delivery: the WebSocket API (its URL, management endpoint, authorizer, routes), the connections table, the inbox stream's mapping to push."
  value = {
    api_id         = aws_apigatewayv2_api.sockets.id
    protocol       = aws_apigatewayv2_api.sockets.protocol_type
    url            = local.sockets_url
    management_url = local.sockets_management_url
    authorizer = {
      type             = aws_apigatewayv2_authorizer.sockets.authorizer_type
      uri              = aws_apigatewayv2_authorizer.sockets.authorizer_uri
      identity_sources = aws_apigatewayv2_authorizer.sockets.identity_sources
    }
    routes = merge(
      { "$connect" = { authorization_type = aws_apigatewayv2_route.connect.authorization_type, authorizer_id = aws_apigatewayv2_route.connect.authorizer_id } },
      { for k, r in aws_apigatewayv2_route.sockets : k => { authorization_type = r.authorization_type, authorizer_id = r.authorizer_id } },
    )
    authorizer_id     = aws_apigatewayv2_authorizer.sockets.id
    connections_table = { name = aws_dynamodb_table.connections.name, ttl = aws_dynamodb_table.connections.ttl[0].attribute_name, hash_key = aws_dynamodb_table.connections.hash_key }
    push_mapping = {
      source                  = aws_lambda_event_source_mapping.push.event_source_arn
      function                = aws_lambda_event_source_mapping.push.function_name
      function_response_types = aws_lambda_event_source_mapping.push.function_response_types
      filter                  = jsondecode(one(one(aws_lambda_event_source_mapping.push.filter_criteria).filter).pattern)
    }
  }
}

output "drill_template_id" {
  description = "The FIS experiment template pausing this region's replication (null on an emulator)."
  value       = one(aws_fis_experiment_template.pause_replication[*].id)
}
