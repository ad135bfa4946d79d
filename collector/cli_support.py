"""Command-line plumbing shared by the ``collector`` and ``sim`` commands.

Bad input must give one line naming the problem and exit status 2, never a
traceback or a usage screen; `OneLineGroup` does that for every subcommand.
"""

from __future__ import annotations

import sys

import click

from .config import ConfigError
from .presets import DEFAULT_PRESET, PRESETS


class OneLineGroup(click.Group):
    def main(self, args=None, prog_name=None, **extra):  # noqa: D102 - click's signature
        name = prog_name or self.name
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except (click.UsageError, ConfigError) as exc:
            message = exc.format_message() if isinstance(exc, click.UsageError) else str(exc)
            click.echo(f"{name}: error: {message}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"{name}: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo(f"{name}: interrupted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


def config_options(default: str = DEFAULT_PRESET):
    """``--preset``, ``--config`` and ``--set``, the same on every command that runs a
    config; `default` is the preset used when neither the option nor the file names one."""
    def decorate(func):
        func = click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                            help="Override one knob (repeatable).")(func)
        func = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                            help="TOML file with a [collector] table.")(func)
        func = click.option("--preset", help="Named starting config (" + ", ".join(PRESETS)
                            + f"); default {default}, or the file's preset.")(func)
        return func

    return decorate
