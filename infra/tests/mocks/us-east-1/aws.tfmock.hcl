# Mocked AWS provider of us-east-1: the values a real provider there would report.

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:us-east-1:123456789012:event-bus/moebi"
  }
}

mock_resource "aws_kms_replica_key" {
  defaults = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    key_id = "mrk-0123456789abcdef0123456789abcdef"
  }
}
