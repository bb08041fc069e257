"""The notebooks run top to bottom against the installed purea2c (executed with nbclient)."""

import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).parents[1] / "notebooks"


def _run(name: str, tmp_path) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == ["01_quickstart.ipynb"]


@pytest.mark.learning
def test_quickstart(tmp_path):
    text = _run("01_quickstart.ipynb", tmp_path)
    solved = [line for line in text.splitlines() if "seeds solved CartPole-v1" in line]
    assert solved, text
    assert int(solved[0].split("/")[0]) >= 7  # at least 7 of 8 seeds, as the learning test
