"""Run workflows on this machine: moto executes the compiled state machine in-process."""
