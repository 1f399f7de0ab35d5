# Live delivery (modules/region/live.tf), on the shipped topology against mocked providers:
# every region has a WebSocket API whose only door is $connect behind the REQUEST authorizer (the
# sockets function, reading ?token=); the connections table expires records within 2 hours; the
# inbox stream feeds push with new inbox entries only, failures reported per record; the two
# functions may do only their part. ARNs are spelled out here from names, not taken from the
# configuration under test.

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


run "live_delivery" {
  command = apply

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.live.protocol == "WEBSOCKET" &&
        w.live.authorizer.type == "REQUEST" &&
        tolist(w.live.authorizer.identity_sources) == tolist(["route.request.querystring.token"]) &&
        w.live.authorizer.uri == "arn:aws:apigateway:${r}:lambda:path/2015-03-31/functions/arn:aws:lambda:${r}:123456789012:function:moebi-sockets/invocations" &&
        w.live.url == "wss://${w.live.api_id}.execute-api.${r}.amazonaws.com/live" &&
        w.live.management_url == "https://${w.live.api_id}.execute-api.${r}.amazonaws.com/live"
      )
    ])
    error_message = "Each region's WebSocket API must check ?token= with the sockets function as its REQUEST authorizer."
  }

  # $connect is the only door, behind the authorizer; the other routes run on what it admitted.
  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        sort(keys(w.live.routes)) == sort(["$connect", "$disconnect", "$default"]) &&
        w.live.routes["$connect"].authorization_type == "CUSTOM" &&
        w.live.routes["$connect"].authorizer_id == w.live.authorizer_id
      )
    ])
    error_message = "$connect must be behind the REQUEST authorizer, and there must be no other route than $disconnect and $default."
  }

  assert {
    condition     = alltrue([for r, w in output.wiring : w.live.connections_table.name == "moebi-connections" && w.live.connections_table.ttl == "expires_at" && w.live.connections_table.hash_key == "participant"])
    error_message = "Each region's connections table must be keyed by participant and expire its records (expires_at)."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : (
        w.live.push_mapping.function == "arn:aws:lambda:${r}:123456789012:function:moebi-push" &&
        tolist(w.live.push_mapping.function_response_types) == tolist(["ReportBatchItemFailures"]) &&
        w.live.push_mapping.filter == { eventName = ["INSERT"], dynamodb = { Keys = { pk = { S = [{ prefix = "inbox#" }] } } } }
      )
    ])
    error_message = "Each region's inbox stream must feed push with new inbox entries only, reporting failures per record."
  }

  # The page and its settings are the only routes without a token.
  assert {
    condition     = alltrue([for r, w in output.wiring : w.api.public_routes == { "GET /" = "NONE", "GET /config.json" = "NONE" }])
    error_message = "Only GET / and GET /config.json may be served without a token."
  }

  # sockets writes connections and nothing else of moebi; push reads the stream, its
  # connections, and posts to sockets; neither may touch the table of inboxes and shares or a bus.
  assert {
    condition = alltrue([
      for r in ["us-west-2", "us-east-1", "eu-west-1"] : (
        sort([for st in jsondecode(aws_iam_role_policy.function["${r}/sockets"].policy).Statement : st.Sid]) == sort(["Connections", "Logs", "Key", "Tracing"]) &&
        sort([for st in jsondecode(aws_iam_role_policy.function["${r}/push"].policy).Statement : st.Sid]) == sort(["Connections", "InboxStream", "PostToSockets", "Logs", "Key", "Tracing"]) &&
        alltrue([for st in jsondecode(aws_iam_role_policy.function["${r}/push"].policy).Statement : st.Resource == ["arn:aws:execute-api:${r}:123456789012:*/live/POST/@connections/*"] if st.Sid == "PostToSockets"])
      )
    ])
    error_message = "sockets and push must each be allowed only their own part."
  }
}
