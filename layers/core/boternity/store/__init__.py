"""Persistence: the only package that talks to DynamoDB or knows the table's key shapes.

One job per module: ``keys`` (every key shape), ``dynamo`` (handles and value helpers), ``runs``
(run, step and attempt records; a run's start, cancel claim and redrive), ``slots`` (concurrency
counters), ``queue`` (runs waiting for a slot), ``approvals``, ``workflows`` (registry, webhook
paths, file watchers), ``idempotency`` (start-once claims), ``sync`` (cross-branch signals);
``blobs`` keeps large outputs in S3. Writes that can lose a race return what happened (an enum
or None), never a ``ClientError`` code, so the service decides which error to answer.
"""
