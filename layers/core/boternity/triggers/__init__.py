"""What starts a workflow, apart from a person: pure helpers shared by the API and the Lambdas.

``boternity.triggers.schedule``
    cron triggers: the schedule syntax -> EventBridge Scheduler expressions, time-zone checks,
    and an evaluator of those expressions (the local runtime's cron loop, and the tests).
``boternity.triggers.matching``
    which S3 keys a file-watch trigger takes, the lookup key of a webhook path, and the
    EventBridge event pattern of an event trigger.

Webhook signature checks live in ``boternity.webhooks``. Nothing here imports boto3.
"""

from __future__ import annotations

__all__ = ["matching", "schedule"]
