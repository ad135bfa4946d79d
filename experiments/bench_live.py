"""Can ``collector live`` spend a big plan on a real clock, and at what CPU cost?

Serves the mock Keepa over HTTP (the code behind ``sim serve``) at `--refill`
tokens/min from an empty bucket, runs ``collector live`` against it as a
separate process for `--duration` seconds, and prints what the server
generated during the run and charged for the calls the collector sent (its
own books, once the last of those calls has completed), the share of the
generated tokens the collector spent, and the collector process's CPU time as
a share of one core. With one refill lump a minute at a phase of its own, a
lump late in the run leaves the collector little time to spend it, so the
share moves with the phase from run to run. Prints figures, never asserts.

    python experiments/bench_live.py [--refill 4000] [--duration 120] [--preset adaptive]
                                     [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.keepa import ServerSettings
from sim.serve import start
from sim.settings import Scenario

DRAIN_S = 21.0  # the mock's longest processing time (offers: 20 s), and a margin


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refill", type=float, default=4000.0)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--preset", default="adaptive")
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    args = parser.parse_args()
    assignments = [f"refill_rate={args.refill:g}", *args.assignments]
    served = start(Scenario(seed=0, server=ServerSettings(rate=args.refill, initial=0)),
                   journal=False)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KEEPA_API_KEY": "bench"}
        command = [sys.executable, "-c", "from collector.cli import main; main()", "live",
                   "--preset", args.preset, "--api-url", served.url, "--db", f"{tmp}/d.sqlite",
                   "--duration", str(args.duration), "--quiet",
                   *(x for a in assignments for x in ("--set", a))]
        began = time.monotonic()
        proc = subprocess.Popen(command, env=env)
        cpu = 0.0
        while proc.poll() is None:
            try:
                cpu = cpu_seconds(proc.pid)
            except (OSError, IndexError):
                pass
            time.sleep(0.2)
        wall = time.monotonic() - began
    with served.lock:
        served.mock.bucket.advance(int(time.time() * 1000))
        generated = served.mock.bucket.generated  # the refill of the run's own minutes
    # the server charges a call when it completes: let the calls the collector sent
    # before it stopped finish (an offers call takes 20 s at most) before counting
    time.sleep(DRAIN_S)
    with served.lock:
        charged, refused = served.mock.bucket.charged, served.mock.http_429
    served.stop()
    print(f"collector live, {args.preset} with {' '.join(assignments)}")
    print(f"  {args.refill:g} tokens/min from an empty bucket for {args.duration:g} s "
          f"(exit status {proc.returncode})")
    print(f"  tokens generated      {generated:,.0f}")
    print(f"  tokens charged        {charged:,.0f} ({charged / generated:.1%} of generated)"
          if generated else "  tokens charged        0")
    print(f"  429s                  {refused}")
    print(f"  collector CPU         {cpu:.2f} s in {wall:.1f} s: {cpu / wall:.1%} of one core")


if __name__ == "__main__":
    main()
