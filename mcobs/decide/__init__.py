"""Decisions: one leader at a time, and a log of every decision it makes.

`lease` (a Redis lease with a fencing token; a memory one for the demo),
`diff` and `facts` (pure: plans -> decision events, and the baseline they are
compared with), `events` (the fenced event log: a Redis stream, or memory),
`decider` (the hub task tying them together), `query` and `routes` (the HTTP
API). Nothing is imported here, so the pure modules load without redis-py.
See README.md in this folder.
"""
