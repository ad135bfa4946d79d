"""Where a live run's lines go: stderr and an optional log file, as text or JSON.

Every line passes through the `Redactor` on its way out. ``--quiet`` keeps
only warnings and errors on stderr; the log file always gets every line, and
is created readable by its owner only, as the database is.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

from collector.config import ConfigError

from .redact import Redactor

LOUD = ("warning", "error")


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


class LiveLog:
    def __init__(self, redact: Redactor, *, quiet: bool = False, as_json: bool = False,
                 path: str | None = None, stream: TextIO | None = None):
        self.redact = redact
        self.quiet = quiet
        self.as_json = as_json
        self.stream = stream or sys.stderr
        self.file: TextIO | None = None
        if path is not None:
            try:
                self.file = open(path, "a", encoding="utf-8", opener=_owner_only)
            except OSError as exc:
                raise ConfigError(f"cannot write log file {path}: {exc.strerror}") from None

    def write(self, kind: str, message: str, fields: dict[str, Any] | None = None) -> None:
        """One line: `kind` is status, event, mode, warning or error."""
        now = time.time()
        if self.as_json:
            line = json.dumps({"t": stamp(now), "kind": kind, "message": message, **(fields or {})})
        else:
            line = f"{stamp(now)} {kind:<7} {message}"
        line = self.redact(line) + "\n"
        if not self.quiet or kind in LOUD:
            self.stream.write(line)
            self.stream.flush()
        if self.file is not None:
            self.file.write(line)
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
