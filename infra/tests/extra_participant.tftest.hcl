# Adding a participant is one edit to the topology: with lina added in eu-west-1
# (tests/fixtures/topology-extra.json) and nothing else changed, every region routes lina's
# messages and stock questions to eu-west-1.

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
  topology_file = "tests/fixtures/topology-extra.json"
}

run "lina_is_routed_from_every_region" {
  command = apply

  assert {
    condition     = output.homes.participants["lina"] == "eu-west-1"
    error_message = "The fixture must home lina in eu-west-1."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : length([
        for name, route in w.routes : name
        if contains(route.pattern["detail-type"], "chat.send") && contains(try(route.pattern.detail.to, []), "lina") &&
        route.target_arn == (r == "eu-west-1" ? w.queue_arns["chat-send"] : output.wiring["eu-west-1"].bus_arn)
      ]) == 1
    ])
    error_message = "A chat message to lina is not routed to eu-west-1 (its chat-send queue there) from some region."
  }

  assert {
    condition = alltrue([
      for r, w in output.wiring : length([
        for name, route in w.routes : name
        if contains(route.pattern["detail-type"], "stock.status") && contains(try(route.pattern.detail.asker, []), "lina") &&
        route.target_arn == (r == "eu-west-1" ? w.function_arns["stock-status"] : output.wiring["eu-west-1"].bus_arn)
      ]) == 1
    ])
    error_message = "A stock question from lina is not routed to eu-west-1 (its stock-status function there) from some region."
  }

  # eu-west-1 had no human before: it now gets the chat-send and stock-status rules.
  assert {
    condition     = output.rules["eu-west-1"]["chat-send"].pattern.detail.to == tolist(["lina"]) && output.rules["eu-west-1"]["stock-status"].pattern.detail.asker == tolist(["lina"])
    error_message = "eu-west-1 must now deliver chats to lina and answer her stock questions."
  }

  assert {
    condition     = output.rules["us-west-2"]["chat-to-eu-west-1"].pattern.detail.to == tolist(["lina", "moebi"]) && output.rules["us-east-1"]["stock-status-to-eu-west-1"].pattern.detail.asker == tolist(["lina"])
    error_message = "The other regions must forward lina's events to eu-west-1, names sorted."
  }
}
