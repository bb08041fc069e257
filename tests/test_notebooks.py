"""The notebooks run top to bottom against the installed purea2c (executed with nbclient).

Each notebook has a cell tagged ``parameters`` with its budgets; the tests insert a cell
after it with small ones, as papermill does, so a run takes seconds rather than minutes.
The committed notebooks carry the outputs of a run with the full budgets.
"""

import base64
import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).parents[1] / "notebooks"

SMALL = {
    "01_quickstart.ipynb": "NUM_SEEDS = 2\nTOTAL_TIMESTEPS = 2048\nEVAL_EPISODES = 4\n",
    "02_sweeps.ipynb": ("LEARNING_RATES = [3e-4, 3e-3]\nENTROPY_COEFS = [0.0, 0.01, 0.03]\n"
                        "NUM_SEEDS = 2\nTOTAL_TIMESTEPS = 2048\nEVAL_EPISODES = 4\n"),
}


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _parameters_index(nb: nbformat.NotebookNode) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return tagged[0]


def _run(name: str, tmp_path) -> nbformat.NotebookNode:
    nb = _read(name)
    injected = nbformat.v4.new_code_cell(SMALL[name])
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(_parameters_index(nb) + 1, injected)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def _mimetypes(nb: nbformat.NotebookNode) -> list[str]:
    return [mime for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
            for mime in o.get("data", {})]


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_committed_with_outputs_of_one_clean_run(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert code[-1].outputs and sum(bool(c.outputs) for c in code) >= len(code) // 2
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    _parameters_index(nb)
    # notebooks import the library rather than pasting it
    source = "\n".join(c.source for c in code)
    assert "import purea2c" in source and "def _iteration" not in source


@pytest.mark.learning
def test_quickstart(tmp_path):
    nb = _run("01_quickstart.ipynb", tmp_path)
    text = _text(nb)
    solved = [line for line in text.splitlines() if "seeds solved CartPole-v1" in line]
    assert solved and solved[0].split("/")[1].startswith("2 seeds"), text
    gif = tmp_path / "cartpole.gif"
    assert gif.read_bytes()[:6] == b"GIF89a"
    shown = [o["data"]["image/gif"] for c in nb.cells if c.cell_type == "code"
             for o in c.outputs if "image/gif" in o.get("data", {})]
    assert shown and base64.b64decode(shown[0])[:6] == b"GIF89a"
    assert "image/png" in _mimetypes(nb)  # the learning curves
    played = [line for line in text.splitlines() if line.startswith("gymnasium CartPole-v1:")]
    assert played and int(played[0].split()[2]) >= 1, text


@pytest.mark.learning
def test_sweeps(tmp_path):
    nb = _run("02_sweeps.ipynb", tmp_path)
    text = _text(nb)
    assert "12 training runs in one program" in text, text  # 2 lrs x 3 entropies x 2 seeds
    rows = [line for line in text.splitlines() if line.startswith("pi_learning_rate=")]
    assert len(rows) == 2, text
    for row in rows:  # one mean return per entropy coefficient, each in [0, 500]
        values = [float(v) for v in row.split("entropy_coef")[1].split()]
        assert len(values) == 3 and all(0 <= v <= 500 for v in values), row
    assert "best mean greedy return" in text
    assert "image/png" in _mimetypes(nb)  # the heatmap


def test_committed_quickstart_shows_the_claims():
    """The committed run (full budgets) solved CartPole on nearly every seed and its policy
    played gymnasium's CartPole-v1 to the 500-step cap."""
    text = _text(_read("01_quickstart.ipynb"))
    solved = [line for line in text.splitlines() if "seeds solved CartPole-v1" in line]
    assert solved, text
    count, total = solved[0].split()[0].split("/")
    assert int(total) == 32 and int(count) >= 30
    assert "gymnasium CartPole-v1: 500 steps, return 500 (reached the 500-step cap)" in text
