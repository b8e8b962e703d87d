"""The cloud service behind the API and webhook functions: the workflow registry, run control
(start, queue, cancel, redrive), trigger resources, and the HTTP error mapping.

Only boto3 and the stdlib at import time: the webhook function's cold start must stay light.
The pydantic request/response models live in ``api_models`` and load only in the api function.
"""

from __future__ import annotations
