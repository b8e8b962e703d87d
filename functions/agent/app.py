"""The agent function: its handler lives in the CoreLayer; the local engine calls it in-process."""
from boternity.handlers.agent import lambda_handler  # noqa: F401
