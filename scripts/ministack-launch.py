"""Starts MiniStack 1.5.33 (the AWS API emulator of `make deploy-emulator`) with two gaps patched.

    .venv/ministack/bin/python scripts/ministack-launch.py     (scripts/deploy-emulator.sh does it)

MiniStack reads its settings from the environment (BIND_HOST, GATEWAY_PORT, ...); so does this
launcher, which adds nothing. The patches replace two functions of MiniStack's EventBridge
module in this process only, at start: nothing under site-packages changes, and a MiniStack
version whose internals moved makes the launcher stop at once (the checks below) instead of
running unpatched.

Each gap is reproduced, against stock MiniStack and against this launcher, by
scripts/ministack-gaps/repro.sh (AWS CLI only; `repro.sh stock` shows the gaps, `repro.sh
patched` shows them closed).

1. A rule target that is an event bus of ANOTHER region (moebi's forwarding rules
   `chat-to-<region>`, `stock-add-to-<region>`, `stock-status-to-<region>`) is dropped: stock
   `_dispatch_to_event_bus` refuses any bus outside the request's region and logs
       WARNING [events] EventBridge -> Event bus: event bus arn:aws:events:us-east-1:000000000000:event-bus/moebi not found
   (repro.sh, gap 1: an event put on us-west-2's bus never reaches the queue behind us-east-1's
   bus). AWS delivers cross-region bus targets (same account, with the target's RoleArn). The
   patch runs the stock same-region dispatch under the target region's request scope.

2. A rule target that is a Lambda function is invoked once, in a bare thread: stock
   `_dispatch_to_lambda` neither retries a failed invocation nor hands it to the function's
   on-failure destination (PutFunctionEventInvokeConfig), and a throttle is dropped the same
   way (repro.sh, gap 2: a function that always fails runs once and its on-failure queue stays
   empty). AWS invokes an EventBridge target asynchronously: 1 + MaximumRetryAttempts tries, then
   the on-failure destination. MiniStack has that path, `lambda_svc.invoke_async_with_retry`
   (used by Invoke InvocationType=Event and S3 notifications); the patch sends EventBridge's
   Lambda targets through it.
"""

import json

from ministack.core import responses
from ministack.services import eventbridge, lambda_svc

for module, name in (
    (eventbridge, "_dispatch_to_event_bus"),
    (eventbridge, "_dispatch_to_lambda"),
    (lambda_svc, "invoke_async_with_retry"),
    (lambda_svc, "_get_func_record_for_ref"),
    (lambda_svc, "_execution_record_for_config"),
    (responses, "_request_region"),
):
    if not hasattr(module, name):
        raise SystemExit(
            "ministack-launch: %s.%s is gone: this launcher patches MiniStack 1.5.33 (see its doc)" % (module.__name__, name)
        )

_stock_dispatch_to_event_bus = eventbridge._dispatch_to_event_bus


def _dispatch_to_event_bus(spec, event, rule, event_path, target_input_payload=None):
    """Gap 1: a bus of another region of this account is served under that region's scope."""
    if (
        spec.service == "events"
        and spec.resource.startswith("event-bus/")
        and spec.account_id == responses.get_account_id()
        and spec.region != responses.get_region()
    ):
        token = responses._request_region.set(spec.region)
        try:
            return _stock_dispatch_to_event_bus(spec, event, rule, event_path, target_input_payload)
        finally:
            responses._request_region.reset(token)
    return _stock_dispatch_to_event_bus(spec, event, rule, event_path, target_input_payload)


def _dispatch_to_lambda(arn, payload):
    """Gap 2: an asynchronous invocation, with Lambda's retries and on-failure destination."""
    try:
        event = json.loads(payload)
    except (json.JSONDecodeError, TypeError):
        event = {"body": payload}
    func, config, name = lambda_svc._get_func_record_for_ref(arn)
    if not func or not config:
        eventbridge.logger.warning("EventBridge -> Lambda: function %s not found", name)
        return
    lambda_svc.invoke_async_with_retry(lambda_svc._execution_record_for_config(func, config), event)
    eventbridge.logger.info("EventBridge -> Lambda %s: dispatched (asynchronous, with retries)", name)


eventbridge._dispatch_to_event_bus = _dispatch_to_event_bus
eventbridge._dispatch_to_lambda = _dispatch_to_lambda

if __name__ == "__main__":
    from ministack.app import main

    main()
