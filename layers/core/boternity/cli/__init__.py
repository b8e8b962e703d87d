"""The boternity command line."""
