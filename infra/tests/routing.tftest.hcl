# The wiring of the shipped topology (infra/topology.json), applied against mocked providers:
# no credentials, no network. Assertions read what the region modules actually deployed
# (output "wiring"): rule patterns, target ARNs, queues, mappings, permissions, IAM policies.

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
  account_id = "123456789012"
  # Placeholder zips (never run): the check "artifacts_built" wants files to exist.
  artifacts_dir = "tests/fixtures/artifacts"
}

run "shipped_topology" {
  command = apply

  assert {
    condition     = sort(keys(output.wiring)) == sort(jsondecode(file("topology.json")).regions)
    error_message = "Every region of the topology must have a region module instance, and no other."
  }

  # From every region, a chat message to any participant or bot goes to exactly one place:
  # the bus of the recipient's home region, or, at home, the chat-send queue (humans) or the
  # moebi-reply function (bots).
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for who, home in merge(output.homes.participants, output.homes.bots) : length([
          for name, route in w.routes : name
          if contains(route.pattern["detail-type"], "chat.send") && contains(try(route.pattern.detail.to, []), who) && route.target_arn == (
            r != home ? output.wiring[home].bus_arn : (contains(keys(output.homes.bots), who) ? w.function_arns["moebi-reply"] : w.queue_arns["chat-send"])
          )
        ]) == 1 && length([for name, route in w.routes : name if contains(try(route.pattern.detail.to, []), who)]) == 1
      ]
    ]))
    error_message = "Some participant's chat messages do not reach its home region from some region (see output.wiring[*].routes)."
  }

  # Stock questions reach the asker's home region; stock additions the store's.
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : concat(
        [
          for who, home in output.homes.participants : length([
            for name, route in w.routes : name
            if contains(route.pattern["detail-type"], "stock.status") && contains(try(route.pattern.detail.asker, []), who) && route.target_arn == (r != home ? output.wiring[home].bus_arn : w.function_arns["stock-status"])
          ]) == 1
        ],
        [
          for store, home in output.homes.stores : length([
            for name, route in w.routes : name
            if contains(route.pattern["detail-type"], "stock.add") && contains(try(route.pattern.detail.store, []), store) && route.target_arn == (r != home ? output.wiring[home].bus_arn : w.queue_arns["stock-add"])
          ]) == 1
        ],
      )
    ]))
    error_message = "Some stock.status asker or stock.add store does not reach its home region from some region."
  }

  # Each kind reaches its function: local targets by kind, SQS mappings, invoke permissions.
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for name, route in w.routes : route.kind == "bus" ? contains(values(output.bus_arns), route.target_arn) && route.target_arn != w.bus_arn && route.role_arn == output.forward_role_arns[r] : (
          route.pattern.source == ["moebi"] && route.target_arn == lookup({
            "chat.send/queue"       = w.queue_arns["chat-send"]
            "chat.send/function"    = w.function_arns["moebi-reply"]
            "stock.add/queue"       = w.queue_arns["stock-add"]
            "stock.status/function" = w.function_arns["stock-status"]
          }, "${route.pattern["detail-type"][0]}/${route.kind}", "no such route")
        )
      ]
    ]))
    error_message = "A rule sends a kind to the wrong queue, function or bus."
  }

  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for f in ["chat-send", "stock-add"] :
        w.event_source_mappings[f].queue_arn == w.queue_arns[f] &&
        w.event_source_mappings[f].function == w.function_arns[f] &&
        w.event_source_mappings[f].function_response_types == toset(["ReportBatchItemFailures"]) &&
        w.event_source_mappings[f].batch_size == 10
      ]
    ]))
    error_message = "A queue is not consumed by its function (batch 10, partial batch failures)."
  }

  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for name, route in w.routes : route.kind != "function" ? true : try(
          w.invoke_permissions[name].source_arn == w.rule_arns[name] &&
          w.invoke_permissions[name].principal == "events.amazonaws.com" &&
          [for f, arn in w.function_arns : w.function_names[f] if arn == route.target_arn] == [w.invoke_permissions[name].function],
          false
        )
      ]
    ]))
    error_message = "A function invoked by a rule lacks the permission for exactly that rule."
  }

  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for name, route in w.routes : length([for p in values(w.invoke_permissions) : p if p.source_arn == w.rule_arns[name]]) == (route.kind == "function" ? 1 : 0)
      ]
    ]))
    error_message = "Only rules that target a function may have an invoke permission, one each."
  }

  # Every queue has its DLQ, after 5 receives; visibility 6 x the function timeout.
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for f in ["chat-send", "stock-add"] :
        w.queues[f].name == "moebi-${f}" &&
        w.queues[f].redrive.maxReceiveCount == 5 &&
        w.queues[f].redrive.deadLetterTargetArn == w.dlq_arns[f] &&
        w.queues[f].visibility_timeout_seconds == 180
      ]
    ]))
    error_message = "A queue lacks its DLQ with maxReceiveCount 5, or its visibility timeout is not 180 s."
  }

  # EventBridge-invoked functions fail into their DLQ; every rule target has a DLQ.
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : concat(
        [for f in ["moebi-reply", "stock-status"] : w.on_failure_destinations[f] == w.dlq_arns[f]],
        [for name, route in w.routes : contains(values(w.dlq_arns), route.dlq_arn)],
      )
    ]))
    error_message = "An EventBridge-invoked function or a rule target has no dead-letter queue."
  }

  # A DLQ-depth alarm per DLQ and an Errors alarm per function (the front door's too), in every region.
  assert {
    condition = alltrue([
      for r, w in output.wiring : length(w.alarm_names) == length(w.dlq_arns) + 7 && alltrue([for f in keys(w.dlq_arns) : contains(w.alarm_names, "moebi-${f}-dlq-not-empty")]) && alltrue([for f, n in w.function_names : contains(w.alarm_names, "${n}-errors")])
    ])
    error_message = "Some DLQ or function has no alarm."
  }

  # A dashboard per region over the metrics the functions emit (embedded metric format,
  # src/observe.rs): each metric of each function, failures by error kind, latency p50/p99.
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for want in flatten([
          for f in ["chat-send", "moebi-reply", "stock-add", "stock-status", "front-door"] : concat(
            [for m in ["RecordsHandled", "Duplicates", "ColdStart", "BatchSize"] : "moebi/${m}/Function/${f}/Region/${r}"],
            [for k in ["retryable", "permanent"] : "moebi/RecordsFailed/Function/${f}/Region/${r}/ErrorKind/${k}"],
            [for p in ["p50", "p99"] : "moebi/EffectLatency/Function/${f}/Region/${r}@${p}"],
          )
          ]) : contains(flatten([
            for widget in w.dashboard.widgets : [
              for line in try(widget.properties.metrics, []) : "${join("/", [for x in line : x if !can(keys(x))])}${try("@${line[length(line) - 1].stat}", "")}"
            ]
        ]), want)
      ]
    ]))
    error_message = "A region's dashboard lacks a function's metric (RecordsHandled, RecordsFailed by ErrorKind, Duplicates, EffectLatency p50/p99, BatchSize, ColdStart)."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : w.dashboard.name == "moebi-${r}" && length(flatten([
        for widget in w.dashboard.widgets : try(widget.properties.alarms, [])
      ])) == length(w.alarm_names)
    ])
    error_message = "Each region's dashboard must be moebi-<region> and show every alarm of the region."
  }

  # Least privilege: no wildcard action in any function role policy; "*" as a resource only for
  # the two X-Ray actions that accept nothing else; every other resource in the role's region.
  assert {
    condition = alltrue(flatten([
      for k, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement : [for a in flatten([s.Action]) : !strcontains(a, "*") && !strcontains(a, "?")]
      ]
    ]))
    error_message = "A function role policy has a wildcard action."
  }

  assert {
    condition = alltrue(flatten([
      for k, p in aws_iam_role_policy.function : [
        for s in jsondecode(p.policy).Statement : [
          for res in flatten([s.Resource]) : res == "*" ? alltrue([for a in flatten([s.Action]) : contains(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], a)]) : strcontains(res, ":${split("/", k)[0]}:")
        ]
      ]
    ]))
    error_message = "A function role policy uses a wildcard resource where it could be scoped, or another region's resource."
  }

  assert {
    condition     = length(aws_iam_role_policy.function) == 7 * length(output.wiring)
    error_message = "Each function in each region must have its own role policy."
  }

  assert {
    condition = alltrue(flatten([
      for r, p in aws_iam_role_policy.forward : [
        for s in jsondecode(p.policy).Statement : flatten([s.Action]) == ["events:PutEvents"] && alltrue([for res in flatten([s.Resource]) : contains(values(output.bus_arns), res)])
      ]
    ]))
    error_message = "A forwarding role may do more than events:PutEvents on moebi buses."
  }

  # A bus admits exactly the forwarding roles of the regions that forward to it. (Who else may
  # write, and that everyone else is denied: front_door.tftest.hcl.)
  assert {
    condition = alltrue([
      for r, w in output.wiring : sort(one([for s in w.bus_policy.Statement : s if s.Effect == "Allow"]).Principal.AWS) == sort([
        for r2, v in output.wiring : output.forward_role_arns[r2] if anytrue([for route in values(v.routes) : route.target_arn == w.bus_arn])
      ])
    ])
    error_message = "A bus policy admits other principals than the forwarding roles targeting it."
  }

  assert {
    condition     = aws_dynamodb_table.moebi.hash_key == "pk" && aws_dynamodb_table.moebi.range_key == "sk" && aws_dynamodb_table.moebi.billing_mode == "PAY_PER_REQUEST" && aws_dynamodb_table.moebi.point_in_time_recovery[0].enabled && aws_dynamodb_table.moebi.ttl[0].attribute_name == "expires_at" && aws_dynamodb_table.moebi.ttl[0].enabled
    error_message = "The table must be pk/sk, on demand, with PITR and TTL on expires_at."
  }

  assert {
    condition     = sort([for rep in aws_dynamodb_table.moebi.replica : rep.region_name]) == sort([for r in keys(output.wiring) : r if r != "us-west-2"]) && alltrue([for rep in aws_dynamodb_table.moebi.replica : rep.kms_key_arn == output.wiring[rep.region_name].kms_key_arn])
    error_message = "The table must have an encrypted replica in every other region."
  }
}

# A topology region without a provider and module block must stop the plan, clearly.
run "unwired_region_is_refused" {
  command = plan

  variables {
    topology_file = "tests/fixtures/topology-extra-region.json"
  }

  expect_failures = [output.regions]
}

# A module instance given the provider of another region must stop the plan, clearly.
run "provider_of_another_region_is_refused" {
  command = plan

  override_data {
    target = module.region_us_east_1[0].data.aws_region.current
    values = {
      name = "us-west-2"
    }
  }

  expect_failures = [output.regions]
}
