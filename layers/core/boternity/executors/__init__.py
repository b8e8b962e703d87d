"""Step executors: one module per step type; each imports only its own SDK."""
