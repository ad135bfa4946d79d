"""notebooks/throughput_curves.ipynb runs top to bottom on a small sweep and a small
comparison, and is kept in git without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "throughput_curves.ipynb"
SMALL = '''refills = "5,20"
grid = ["chunk_size+batch_size=1,4", "min_interval_s=1,60"]
hours = 4
seeds = 2
workers = 1
compare_presets = "seed-after,fixed"'''


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


def test_notebook_runs_top_to_bottom_on_a_small_sweep(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(SMALL, metadata={"tags": ["injected"]}))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 7  # 2 curves, 1 heatmap, 2 sawtooths, 1 Pareto front, 1 comparison
    text = "".join(o.get("text", "") for o in outputs)
    assert "runs from" in text
    assert "8 runs of 2 presets from" in text  # the sim compare section: 2 presets x 2 rates x 2
