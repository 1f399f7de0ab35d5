# The front door (DESIGN.md, "The front door: who may write what"), on the shipped topology,
# applied against mocked providers (no credentials, no network): only moebi's own roles may put
# events on a bus; every route of every region's HTTP API is behind the user pool's JWT
# authorizer; the front door's role, permission and wiring. The expected role ARNs are spelled
# out here from the names (moebi-<function>-<region>, moebi-forward-<region>), not taken from
# the configuration under test.

mock_provider "aws" {
  source = "./tests/mocks/primary"
}

mock_provider "aws" {
  alias  = "us_west_2"
  source = "./tests/mocks/us-west-2"
}

mock_provider "aws" {
  alias  = "us_east_1"
  source = "./tests/mocks/us-east-1"
}

mock_provider "aws" {
  alias  = "eu_west_1"
  source = "./tests/mocks/eu-west-1"
}

variables {
  account_id    = "123456789012"
  artifacts_dir = "tests/fixtures/artifacts"
}

# On a plan: the policies are known before apply (every ARN in them is spelled from names).
run "only_moebi_writes_to_a_bus" {
  command = plan

  # Every region's bus has a policy (not only the regions some other region forwards to).
  assert {
    condition     = alltrue([for r, w in output.wiring : length(w.bus_policy.Statement) > 0]) && length(output.wiring) == 3
    error_message = "Every region's bus must have a policy."
  }

  # Exactly one Deny: events:PutEvents on this bus, for every principal ("*"), unless the
  # principal's ARN is one of exactly {this region's front-door role, this region's
  # moebi-reply role, the forwarding role of each region whose rules target this bus}.
  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        length([for s in w.bus_policy.Statement : s if s.Effect == "Deny"]) == 1 &&
        alltrue([
          for s in w.bus_policy.Statement : (
            s.Principal == "*" &&
            s.Action == "events:PutEvents" &&
            s.Resource == "arn:aws:events:${r}:123456789012:event-bus/moebi" &&
            keys(s.Condition) == ["ArnNotEquals"] &&
            keys(s.Condition.ArnNotEquals) == ["aws:PrincipalArn"] &&
            sort(flatten([s.Condition.ArnNotEquals["aws:PrincipalArn"]])) == sort(concat(
              [
                "arn:aws:iam::123456789012:role/moebi-front-door-${r}",
                "arn:aws:iam::123456789012:role/moebi-moebi-reply-${r}",
              ],
              [
                for r2, rules in output.rules : "arn:aws:iam::123456789012:role/moebi-forward-${r2}"
                if r2 != r && anytrue([for rule in values(rules) : rule.target.kind == "bus" && rule.target.name == r])
              ],
            ))
          ) if s.Effect == "Deny"
        ])
      )
    ])
    error_message = "A bus policy must deny events:PutEvents to every principal but exactly its region's front-door and moebi-reply roles and the forwarding roles targeting it."
  }

  # The shipped topology forwards into every region: two forwarders each, so four exceptions.
  assert {
    condition = alltrue([
      for r, w in output.wiring : length(flatten([
        for s in w.bus_policy.Statement : [s.Condition.ArnNotEquals["aws:PrincipalArn"]] if s.Effect == "Deny"
      ])) == 4
    ])
    error_message = "With the shipped topology each bus admits 4 writers (front door, moebi-reply, 2 forwarders)."
  }

  # The only Allow is for the forwarding roles (a cross-region put needs the bus's consent),
  # and each of them is also an exception of the Deny.
  assert {
    condition = alltrue([
      for r, w in output.wiring : alltrue([
        for s in w.bus_policy.Statement : (
          s.Sid == "ForwardsFromOtherRegions" &&
          s.Action == "events:PutEvents" &&
          alltrue([for p in flatten([s.Principal.AWS]) : can(regex("^arn:aws:iam::123456789012:role/moebi-forward-[a-z0-9-]+$", p)) && p != "arn:aws:iam::123456789012:role/moebi-forward-${r}"]) &&
          alltrue([for p in flatten([s.Principal.AWS]) : contains(w.bus_writers, p)])
        ) if s.Effect == "Allow"
      ])
    ])
    error_message = "A bus policy allows something other than the other regions' forwarding roles."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        contains(w.bus_writers, output.function_role_arns[r]["front-door"]) &&
        contains(w.bus_writers, output.function_role_arns[r]["moebi-reply"]) &&
        !contains(w.bus_writers, output.function_role_arns[r]["chat-send"]) &&
        !contains(w.bus_writers, output.function_role_arns[r]["stock-add"]) &&
        !contains(w.bus_writers, output.function_role_arns[r]["stock-status"])
      )
    ])
    error_message = "The writers of a bus must be its region's front door and moebi-reply (not the other functions)."
  }

}

run "only_two_function_roles_may_put_events" {
  command = apply

  # Of the function roles, only the front door and moebi-reply may PutEvents, each on its own
  # region's bus only.
  assert {
    condition = alltrue(flatten([
      for k, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement : (
          contains(["front-door", "moebi-reply"], split("/", k)[1]) &&
          flatten([s.Resource]) == [output.bus_arns[split("/", k)[0]]]
        ) if contains(flatten([s.Action]), "events:PutEvents")
      ]
    ]))
    error_message = "Only the front door and moebi-reply may put events, each on its own region's bus."
  }

  assert {
    condition = length(flatten([
      for k, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement : k if contains(flatten([s.Action]), "events:PutEvents")
      ]
    ])) == 2 * length(output.wiring)
    error_message = "Each region's front door and moebi-reply must be allowed events:PutEvents."
  }
}

run "every_route_is_behind_the_user_pool" {
  command = apply

  # The pool's issuer and the app client, as the HTTP APIs must check them.
  assert {
    condition     = output.jwt_issuer == "https://cognito-idp.us-west-2.amazonaws.com/${output.user_pool_id}" && output.jwt_issuer == "https://${aws_cognito_user_pool.moebi.endpoint}"
    error_message = "The issuer must be https://cognito-idp.<primary region>.amazonaws.com/<pool id>."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.api.authorizer.type == "JWT" &&
        w.api.authorizer.issuer == output.jwt_issuer &&
        tolist(w.api.authorizer.audience) == tolist([output.user_pool_client_id]) &&
        tolist(w.api.authorizer.identity_sources) == tolist(["$request.header.Authorization"])
      )
    ])
    error_message = "Each HTTP API's JWT authorizer must check the pool's issuer and exactly the app client."
  }

  # Exactly the four routes, each with JWT authorization by that authorizer, to the one
  # integration; no $default route (nothing unauthenticated).
  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        sort([for k, rt in w.api.routes : rt.route_key]) == sort(["POST /messages", "GET /inbox", "POST /stock", "POST /stock/status"]) &&
        alltrue([
          for k, rt in w.api.routes : rt.authorization_type == "JWT" && rt.authorizer_id == w.api.authorizer.id && rt.target == "integrations/${w.api.integration.id}"
        ])
      )
    ])
    error_message = "Every route of every HTTP API must be one of the four, authorized by the JWT authorizer, targeting the front door's integration."
  }

  assert {
    condition     = alltrue(flatten([for r, w in output.wiring : [for k, rt in w.api.routes : !strcontains(rt.route_key, "$default")]]))
    error_message = "No HTTP API may have a $default route."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.api.integration.type == "AWS_PROXY" &&
        w.api.integration.payload_format_version == "2.0" &&
        w.api.integration.uri == w.function_arns["front-door"] &&
        w.function_arns["front-door"] == "arn:aws:lambda:${r}:123456789012:function:moebi-front-door"
      )
    ])
    error_message = "Each HTTP API must proxy (payload 2.0) to its own region's front door."
  }

  # Only that region's API may invoke the front door.
  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.api.invoke_permission.principal == "apigateway.amazonaws.com" &&
        w.api.invoke_permission.function == "moebi-front-door" &&
        w.api.invoke_permission.source_arn == "arn:aws:execute-api:${r}:123456789012:${w.api.id}/*/*"
      )
    ])
    error_message = "The front door must be invocable by its region's HTTP API only."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.api.stage.name == "$default" && w.api.stage.auto_deploy &&
        w.api.stage.access_log_arn == "arn:aws:logs:${r}:123456789012:log-group:/aws/http-api/moebi-front-door" &&
        w.api.stage.rate_limit == 50 && w.api.stage.burst_limit == 100
      )
    ])
    error_message = "Each HTTP API needs a $default stage with auto deploy, access logs and throttling."
  }

  assert {
    condition     = output.api_endpoints == { for r, w in output.wiring : r => w.api.endpoint } && alltrue([for r, u in output.api_endpoints : startswith(u, "https://")])
    error_message = "output api_endpoints must map each region to its HTTP API's URL."
  }

  assert {
    condition     = output.user_groups == tolist(["participants", "stores"]) && aws_cognito_user_pool_client.moebi.generate_secret == false && aws_cognito_user_pool.moebi.admin_create_user_config[0].allow_admin_create_user_only
    error_message = "The pool needs the groups participants and stores, a public client, and no self sign-up."
  }
}

run "the_front_door_function" {
  command = apply

  # Reads and writes the table (idempotency records, inboxes) in its own region only.
  assert {
    condition = alltrue(flatten([
      for r in keys(output.wiring) : [
        for st in jsondecode(aws_iam_role_policy.function["${r}/front-door"].policy).Statement : (
          jsonencode(st.Action) == jsonencode(["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:TransactWriteItems", "dynamodb:UpdateItem"]) &&
          jsonencode(st.Resource) == jsonencode(["arn:aws:dynamodb:${r}:123456789012:table/moebi"])
        ) if st.Sid == "Table"
      ]
    ]))
    error_message = "The front door's role must have exactly the six DynamoDB actions, on its region's replica."
  }

  assert {
    condition = alltrue([
      for r in keys(output.wiring) : jsonencode(sort([
        for st in jsondecode(aws_iam_role_policy.function["${r}/front-door"].policy).Statement : st.Sid
      ])) == jsonencode(["Key", "Logs", "PublishForCallers", "Table", "Tracing"])
    ])
    error_message = "The front door's role may only use the table, its bus, its logs, its key and X-Ray."
  }

  # Answers HTTP synchronously: no queue, no DLQ, no mapping, no async config, no rule.
  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        !contains(keys(w.queues), "front-door") &&
        !contains(keys(w.dlq_arns), "front-door") &&
        !contains(keys(w.event_source_mappings), "front-door") &&
        !contains(keys(w.on_failure_destinations), "front-door") &&
        !anytrue([for route in values(w.routes) : route.target_arn == w.function_arns["front-door"]]) &&
        w.function_names["front-door"] == "moebi-front-door"
      )
    ])
    error_message = "The front door must not be fed by a queue or a rule, nor have a DLQ."
  }

  assert {
    condition = alltrue([
      for r in keys(output.wiring) : (
        output.function_role_arns[r]["front-door"] == "arn:aws:iam::123456789012:role/moebi-front-door-${r}"
      )
    ])
    error_message = "Each region needs its own front door with its own role."
  }
}
