# --- The region's dashboard: what the functions report, the queues, the alarms ---------------
# The functions emit their metrics in CloudWatch's embedded metric format (src/lambda.rs,
# src/observe.rs): namespace `moebi`, dimensions Function and Region on every metric, and
# ErrorKind (retryable, permanent) on RecordsFailed as well.

locals {
  metric_namespace = "moebi"
  dashboard_period = 300

  # One line per function (and per error kind): [namespace, metric, dimensions..., options].
  per_function = {
    for metric in ["RecordsHandled", "Duplicates", "ColdStart", "BatchSize"] : metric => [
      for f in sort(tolist(local.functions)) : [local.metric_namespace, metric, "Function", f, "Region", var.region, { label = f }]
    ]
  }
  # (concat(...) and not flatten: flatten would also flatten each metric line.)
  records_failed = concat([
    for f in sort(tolist(local.functions)) : [
      for kind in ["retryable", "permanent"] : [local.metric_namespace, "RecordsFailed", "Function", f, "Region", var.region, "ErrorKind", kind, { label = "${f} ${kind}" }]
    ]
  ]...)
  effect_latency = concat([
    for f in sort(tolist(local.functions)) : [
      for p in ["p50", "p99"] : [local.metric_namespace, "EffectLatency", "Function", f, "Region", var.region, { stat = p, label = "${f} ${p}" }]
    ]
  ]...)
  queue_depth = [
    for f in sort(tolist(local.queue_functions)) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.main[f].name, { label = aws_sqs_queue.main[f].name }]
  ]
  oldest_message = [
    for f in sort(tolist(local.queue_functions)) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.main[f].name, { label = aws_sqs_queue.main[f].name }]
  ]
  dlq_depth = [
    for k in sort(keys(aws_sqs_queue.dlq)) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq[k].name, { label = aws_sqs_queue.dlq[k].name }]
  ]

  # Graphs, in reading order; laid out two to a row below.
  graphs = [
    { title = "Records handled (sum)", stat = "Sum", metrics = local.per_function["RecordsHandled"] },
    { title = "Records failed, by error kind (sum)", stat = "Sum", metrics = local.records_failed },
    { title = "Effect latency, ms (p50, p99)", stat = "p50", metrics = local.effect_latency },
    { title = "Duplicates (sum)", stat = "Sum", metrics = local.per_function["Duplicates"] },
    { title = "Batch size (average)", stat = "Average", metrics = local.per_function["BatchSize"] },
    { title = "Cold starts (sum)", stat = "Sum", metrics = local.per_function["ColdStart"] },
    { title = "Queue depth (visible messages, max)", stat = "Maximum", metrics = local.queue_depth },
    { title = "Oldest message in a queue, s (max)", stat = "Maximum", metrics = local.oldest_message },
    { title = "Dead-letter queue depth (max): anything here pages", stat = "Maximum", metrics = local.dlq_depth },
  ]

  alarm_arns = concat(
    [for k in sort(keys(aws_cloudwatch_metric_alarm.dlq)) : aws_cloudwatch_metric_alarm.dlq[k].arn],
    [for k in sort(keys(aws_cloudwatch_metric_alarm.errors)) : aws_cloudwatch_metric_alarm.errors[k].arn],
  )

  dashboard_widgets = concat(
    [{
      type   = "alarm"
      x      = 0
      y      = 0
      width  = 24
      height = 4
      properties = {
        title  = "Alarms: a message in a DLQ, a function error (${var.region})"
        alarms = local.alarm_arns
      }
    }],
    [for i, g in local.graphs : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = 4 + floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = g.title
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = g.stat
        period  = local.dashboard_period
        metrics = g.metrics
      }
    }],
  )
}

resource "aws_cloudwatch_dashboard" "moebi" {
  # Dashboard names are global to the account: one per region, named after it.
  dashboard_name = "moebi-${var.region}"
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
