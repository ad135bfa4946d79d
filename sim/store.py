"""A sweep's results directory: what was asked, every finished run, the tables.

``sweep.json`` records the sweep (base config, axes, refill rates, hours,
seeds), so a sweep started again on the same directory can check that it is
the same sweep and skip what is done. ``runs.jsonl`` is the journal: one JSON
row per finished run, appended and flushed as each run ends, so a kill loses
at most the runs in flight and never a stored row (a line cut short by the kill
is dropped when the sweep starts again). ``results.parquet`` and
``results.csv`` are the same rows in sweep order, rewritten atomically from the
journal every few seconds and at the end; they hold the runs of the sweep as
it is now (if the simulator's settings gain a field, every run's identity
changes and old rows stay in the journal only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from collector.config import ConfigError

MANIFEST, JOURNAL, PARQUET, CSV = "sweep.json", "runs.jsonl", "results.parquet", "results.csv"


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.rows: dict[str, dict] = {}
        self._journal = None

    def open(self, manifest: dict) -> dict[str, dict]:
        """Start or resume the sweep `manifest` describes; returns the rows already stored."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.root}: {exc.strerror}") from None
        path = self.root / MANIFEST
        if path.exists():
            stored = self.manifest()
            changed = [key for key in manifest if stored.get(key) != manifest[key]]
            if changed:
                raise ConfigError(
                    f"{self.root} holds another sweep ({', '.join(changed)} differ); "
                    "pass another --out, or the same options to resume it")
        else:
            _replace_file(path, json.dumps(manifest, indent=1) + "\n")
        self.rows = self._read_journal()
        self._journal = open(self.root / JOURNAL, "a", encoding="utf-8")
        return self.rows

    def add(self, run_id: str, row: dict) -> None:
        self._journal.write(json.dumps({"run_id": run_id, **row}) + "\n")
        self._journal.flush()
        self.rows[run_id] = row

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def save(self, order: dict[str, tuple]) -> None:
        """Rewrite the Parquet and CSV tables from the stored rows of the runs in `order`
        (run_id → sort key); rows of other runs stay in the journal only."""
        import pandas as pd

        ids = sorted((i for i in self.rows if i in order), key=order.get)
        table = pd.DataFrame([{"run_id": i, **self.rows[i]} for i in ids])
        for name, write in ((PARQUET, lambda p: table.to_parquet(p, index=False)),
                            (CSV, lambda p: table.to_csv(p, index=False))):
            tmp = self.root / f".{name}.tmp"
            write(tmp)
            os.replace(tmp, self.root / name)

    # -- reading ---------------------------------------------------------------------
    def manifest(self) -> dict:
        path = self.root / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{self.root} holds no sweep results (no {MANIFEST})") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None

    def table(self):
        """The saved results as a DataFrame."""
        import pandas as pd

        self.manifest()
        try:
            return pd.read_parquet(self.root / PARQUET)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self.root / PARQUET}: {exc}") from None

    def _read_journal(self) -> dict[str, dict]:
        path = self.root / JOURNAL
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) < len(data):  # the last line was cut short by a kill
            with open(path, "r+b") as out:
                out.truncate(len(complete))
        rows = {}
        for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
                rows[row.pop("run_id")] = row
            except (ValueError, KeyError, AttributeError):
                raise ConfigError(f"{path}:{number} is not a result row; move the file away "
                                  "to start this sweep afresh") from None
        return rows


def _replace_file(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
