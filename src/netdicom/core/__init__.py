"""The sans-IO protocol engine: bytes in, typed values and effects out.

Nothing in this package opens a socket, reads a clock, starts a thread or prints.
"""
