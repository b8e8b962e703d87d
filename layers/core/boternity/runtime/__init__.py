"""What runs inside the step and control functions: context, gate, records, signals."""
