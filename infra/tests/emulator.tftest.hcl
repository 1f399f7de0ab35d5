# The deployment on an AWS API emulator (scripts/deploy-emulator.sh): with every
# emulator_lacks_* switch on, what the emulator lacks is replaced as variables.tf says, and the
# routing stays the topology's. (The shipped defaults, for AWS, are tested in routing.tftest.hcl.)

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
  account_id                              = "123456789012"
  artifacts_dir                           = "tests/fixtures/artifacts"
  endpoint_url                            = "http://127.0.0.1:4566"
  emulator_lacks_kms_replicas             = true
  emulator_lacks_global_tables            = true
  emulator_lacks_lambda_invoke            = true
  emulator_lacks_sqs_redrive_allow_policy = true
}

# The regional keys that stand in for the replicas (the mocks only know the replica keys).
override_resource {
  target = module.region_us_east_1[0].aws_kms_key.regional
  values = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_id = "11111111-2222-3333-4444-555555555555"
  }
}

override_resource {
  target = module.region_eu_west_1[0].aws_kms_key.regional
  values = {
    arn    = "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000"
    key_id = "66666666-7777-8888-9999-000000000000"
  }
}

run "emulator_stand_ins" {
  command = apply

  assert {
    condition     = length(aws_dynamodb_table.moebi.replica) == 0
    error_message = "Without global tables the table must have no replicas (each region module makes its own table)."
  }

  assert {
    condition     = alltrue([for r, w in output.wiring : r == "us-west-2" || w.kms_key_arn != aws_kms_key.moebi.arn])
    error_message = "Without KMS replicas every other region must use a key of its own."
  }

  # Every rule that targets a function on AWS targets the function's stand-in queue instead,
  # which redrives to the function's DLQ after 3 receives (Lambda's asynchronous attempts).
  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for name, route in w.routes : route.kind == "queue" && route.target_arn == w.queue_arns[name] && route.dlq_arn == w.dlq_arns[name]
        if contains(["moebi-reply", "stock-status"], name)
      ]
    ]))
    error_message = "A rule of moebi-reply or stock-status does not target the function's stand-in queue."
  }

  assert {
    condition = alltrue(flatten([
      for r, w in output.wiring : [
        for f in ["moebi-reply", "stock-status"] : w.queues[f].redrive.maxReceiveCount == 3 && w.queues[f].visibility_timeout_seconds == 60 && w.queues[f].redrive.deadLetterTargetArn == w.dlq_arns[f]
      ]
    ]))
    error_message = "A stand-in queue must redrive to its function's DLQ after 3 receives, 60 s apart."
  }

  # The front door is no event handler: no stand-in queue for it either.
  assert {
    condition     = alltrue([for r, w in output.wiring : !contains(keys(w.queues), "front-door") && !contains(keys(w.dlq_arns), "front-door")])
    error_message = "The front door must get no stand-in queue and no DLQ."
  }

  assert {
    condition     = alltrue([for r, w in output.wiring : length(w.event_source_mappings) == 0 && length(w.invoke_permissions) == 0 && !anytrue([for route in values(w.routes) : route.kind == "function"])])
    error_message = "On the emulator nothing may invoke a function (no event source mappings, no function targets)."
  }

  # The routing is the topology's all the same: the same rules, with the same patterns.
  assert {
    condition = alltrue([
      for r, w in output.wiring : sort(keys(w.routes)) == sort(keys(output.rules[r])) && alltrue([
        for name, route in w.routes : jsonencode(route.pattern) == jsonencode(output.rules[r][name].pattern)
      ])
    ])
    error_message = "The emulator's rules must be the topology's rules."
  }
}
