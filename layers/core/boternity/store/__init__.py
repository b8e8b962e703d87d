"""Persistence: run records (DynamoDB), cross-branch signals, claim-checked outputs."""
