"""Keep the API key out of everything the live collector writes.

Keepa takes the key in the query string, so any URL, any exception text from
the HTTP library and any of its log records may carry it. `Redactor` blanks
the key (raw and percent-encoded) and every ``key=`` query value in a text;
`Redactor.guard_library_logs` puts the same filter on httpx's and httpcore's
loggers, which log request URLs at INFO and DEBUG.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus

_KEY_PARAM = re.compile(r"(key=)[^&\s\"'<>]*", re.IGNORECASE)
MASK = "***"
LIBRARY_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2",
                   "httpcore.proxy", "httpcore.socks")


class Redactor(logging.Filter):
    def __init__(self, key: str):
        super().__init__()
        self.secrets = sorted({s for s in (key, quote(key, safe=""), quote_plus(key)) if s},
                              key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _KEY_PARAM.sub(r"\1" + MASK, text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a log record's message with the key blanked (never drops it)."""
        record.msg, record.args = self(record.getMessage()), None
        return True

    def guard_library_logs(self) -> None:
        for name in LIBRARY_LOGGERS:
            logger = logging.getLogger(name)
            for old in [f for f in logger.filters if isinstance(f, Redactor)]:
                logger.removeFilter(old)
            logger.addFilter(self)
