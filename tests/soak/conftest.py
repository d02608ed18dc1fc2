"""The soak run is a script (`python -m tests.soak.soak`), not a test: never collect it."""

collect_ignore = ["soak.py", "instrumented.py"]
