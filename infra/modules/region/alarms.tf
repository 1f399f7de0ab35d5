# --- Alarms: any message in a DLQ, any function error -----------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "moebi-alarms"
  kms_master_key_id = local.key_arn
}

resource "aws_sns_topic_subscription" "alarms" {
  count     = local.s.alarm_email == null ? 0 : 1
  topic_arn = local.topic_arn
  protocol  = "email"
  endpoint  = local.s.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  for_each            = aws_sqs_queue.dlq
  alarm_name          = "${each.value.name}-not-empty"
  alarm_description   = "Messages in ${each.value.name} (${var.region}): inspect them, fix the cause, redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic_arn]
  ok_actions          = [local.topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = aws_lambda_function.fn
  alarm_name          = "${each.value.function_name}-errors"
  alarm_description   = "${each.value.function_name} (${var.region}) reported errors."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic_arn]
  ok_actions          = [local.topic_arn]
}
