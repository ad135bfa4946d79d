"""The mock's two errors: a bad knob of its settings, and a request it refuses.

The mock imports nothing from the collector but Keepa's vocabulary
(`collector.keepa`), so a bad setting raises the mock's own `SettingsError`;
`sim.settings`, where ``--set server.KEY=...`` meets the mock, reports it as
the one-line `collector.config.ConfigError` that every command prints and
exits 2 on. `Reject` carries what the envelope of a refused request says.
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A `ServerSettings` knob (a fault setting included) out of range or malformed."""


class Reject(Exception):
    """A request the mock refuses as Keepa would: the HTTP `status` (400 a parameter
    Keepa rejects or the mock does not model, 405 one out of its allowed range) and
    the ``error.type`` of the envelope (``invalidParameter``, ``parameterOutOfRange``)."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind = status, kind
