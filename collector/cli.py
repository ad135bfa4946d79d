"""The ``collector`` command: the collector itself, on a real clock."""

from __future__ import annotations

import json
import math

import click

from .cli_support import OneLineGroup, config_options
from .config import Config

DEFAULT_DB = "keepa-deals.sqlite"
LIVE_PRESET = "fixed"
"""A live collector spends real tokens, so by default it runs without the faults the
seed presets copy (a peek that filters nothing, recent deals in the wrong order)."""


@click.group(cls=OneLineGroup, name="collector")
def main() -> None:
    """Run the Keepa deals collector live, or look at a running one."""


@main.command()
@config_options(LIVE_PRESET)
@click.option("--api-url", default="https://api.keepa.com", show_default=True,
              help="Keepa's API, or a `sim serve` URL such as http://127.0.0.1:8700.")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="SQLite database (created if missing; resumed if not).")
@click.option("--domain", type=int, default=1, show_default=True,
              help="Keepa domain id (1 = amazon.com).")
@click.option("--key-file", type=click.Path(dir_okay=False),
              help="File holding the API key (default: the KEEPA_API_KEY variable).")
@click.option("--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--log-json", is_flag=True, help="Log lines as JSON objects.")
@click.option("--log-file", type=click.Path(dir_okay=False),
              help="Also append every log line to this file.")
@click.option("--status-every", type=float, default=10.0, show_default=True,
              help="Seconds between status lines.")
@click.option("--duration", type=float, help="Stop after this many seconds (default: run "
              "until SIGINT or SIGTERM).")
def live(preset, config_file, assignments, api_url, db, domain, key_file, quiet, log_json,
         log_file, status_every, duration) -> int:
    """Collect deals from Keepa into a SQLite database until stopped.

    The key is never taken on the command line and never written anywhere.
    SIGINT or SIGTERM stops calling and exits 0; the run resumes from the
    last stored chunk when started again. A bad key, an unpaid plan or a
    rejected parameter stops with one error line and exit status 1.
    """
    from .live.main import LiveOptions, read_key, run_live

    config = Config.load(preset, config_file, assignments, default=LIVE_PRESET)
    key = read_key(key_file)
    options = LiveOptions(config, api_url, db, domain, quiet, log_json, log_file, status_every,
                          duration)
    return run_live(options, key)


@main.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="The collector's SQLite database.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(db, as_json) -> None:
    """Show what the collector on this database is doing (read-only)."""
    from .live.status import render, report

    result = report(db)
    click.echo(json.dumps(_finite(result), sort_keys=True) if as_json else render(result))


def _finite(value):
    """JSON has no infinity: an ETA that never comes is null."""
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
