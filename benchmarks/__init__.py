"""Benchmarks for Boternity Workflows: ``python -m benchmarks [--quick]``.

Sections: makespan against the critical path and two baselines (an ASL timing simulator checked
against moto by tests/functional/test_simulator.py), cost per run from moto histories, handler
cold starts, local engine speed and api trigger latency, and scale limits. See RESULTS.md.
"""
