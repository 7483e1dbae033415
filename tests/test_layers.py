"""The package's layers import downwards only: nothing below ``pipelines/`` imports from it, and the
plain-torch/numpy layers (``nn``, ``verification``, ``training``) import no Kedro or MLflow."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "precipdiff"
LOWER = ["atomic.py", "baselines", "data", "datasets", "inference", "nn", "registry.py", "reporting", "seeds.py",
         "serving", "training", "verification"]
PLAIN = ["nn", "verification", "training", "seeds.py"]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path`` (relative imports resolved against the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).rstrip(".")
            out.append((node.lineno, base))
    return out


def _files(name: str) -> list[Path]:
    path = PACKAGE / name
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_do_not_import_pipelines(layer):
    found = [f"{f.relative_to(PACKAGE)}:{line} imports {mod}" for f in _files(layer) for line, mod in _imports(f)
             if mod == "precipdiff.pipelines" or mod.startswith("precipdiff.pipelines.")]
    assert not found, "a lower layer reaches up into pipelines/:\n" + "\n".join(found)


@pytest.mark.parametrize("layer", PLAIN)
def test_plain_layers_import_no_kedro_or_mlflow(layer):
    found = [f"{f.relative_to(PACKAGE)}:{line} imports {mod}" for f in _files(layer) for line, mod in _imports(f)
             if mod.split(".")[0] in ("kedro", "kedro_mlflow", "mlflow")]
    assert not found, f"{layer}/ should stay plain torch/numpy:\n" + "\n".join(found)


def test_inference_reaches_no_mlflow():
    """inference/ gets its models from the catalog (datasets/mlflow_model.py, precipdiff.registry): #15."""
    found = [f"{f.relative_to(PACKAGE)}:{line} imports {mod}" for f in _files("inference") for line, mod in _imports(f)
             if mod.split(".")[0] in ("mlflow", "kedro_mlflow") or mod.split(".")[:2] == ["precipdiff", "registry"]]
    assert not found, "inference/ should not look models up in MLflow itself:\n" + "\n".join(found)
