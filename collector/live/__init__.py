"""The collector on a real clock: asyncio runtime, HTTP transport, SQLite.

This is the only part of ``collector`` that may import asyncio or an HTTP
library (DEVELOPERS.md, rule 1).
"""
