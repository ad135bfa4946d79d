"""The ``collector`` command: the collector itself, on a real clock."""

from __future__ import annotations

import click

from .cli_support import OneLineGroup


@click.group(cls=OneLineGroup, name="collector")
def main() -> None:
    """Run the Keepa deals collector live, or look at a running one."""
