"""The web console: pages that show workflows, runs (a live DAG), steps and approvals.

The console is a client of the HTTP API and nothing else: `boternity serve` mounts it at
``/console/`` and hands it the API in-process; `boternity console --api <ApiUrl>` serves it on
127.0.0.1 and signs its calls to a deployed stack with the user's AWS credentials. Its pages are
static assets shipped in this package plus JSON views built here, so nothing is loaded from the
internet and nothing is built at install. It must not import the service, store or handler
modules (it only sees what the API answers), except the blob store to resolve claim-checked
outputs where the caller hands it one.
"""
