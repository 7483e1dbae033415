"""The package's layers import downwards only: nothing below ``pipelines/`` imports from it, the
plain-torch/numpy layers (``nn``, ``verification``, ``training``, the model card) import no Kedro or
MLflow, ``inference/`` and ``training/`` never import each other (what they share lives below both:
``nn/``, ``model_card.py``), and no module imports itself back through others (#24).

Every import counts, including those under ``if TYPE_CHECKING:`` (a type-only circle is still a
circle for the reader)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "precipdiff"
LOWER = ["atomic.py", "baselines", "data", "datasets", "inference", "model_card.py", "nn", "registry.py",
         "reporting", "sampler_settings.py", "seeds.py", "serve.py", "serving", "training", "verification"]
PLAIN = ["nn", "verification", "training", "seeds.py", "model_card.py", "sampler_settings.py"]
SIDEWAYS = [("inference", "training"), ("training", "inference")]  # (importer, must not be imported)


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


@pytest.mark.parametrize(("layer", "other"), SIDEWAYS)
def test_inference_and_training_do_not_import_each_other(layer, other):
    """The one sampling path and the model card sit below both (``nn/sampling.py``, ``model_card.py``)."""
    target = f"precipdiff.{other}"
    found = [f"{f.relative_to(PACKAGE)}:{line} imports {mod}" for f in _files(layer) for line, mod in _imports(f)
             if mod == target or mod.startswith(target + ".")]
    assert not found, f"{layer}/ reaches sideways into {other}/:\n" + "\n".join(found)


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``; ``from pkg import name`` means the submodule
    ``pkg.name`` when there is one, else ``pkg`` (its ``__init__``)."""
    files = {_module_name(f, root): f for f in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = node.module or ""
                if node.level:
                    base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
                edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle: the strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_inside_the_package():
    found = circles(import_graph())
    assert not found, "modules that import each other back (move what they share into its own module):\n" + \
        "\n".join(" <-> ".join(c) for c in found)


def test_the_circle_finder_finds_a_type_only_circle(tmp_path):
    """The check above can fail: a TYPE_CHECKING import back from the driver is a circle."""
    pkg = tmp_path / "precipdiff" / "training"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "loop.py").write_text("from precipdiff.training.step import train_step\nclass TrainState: ...\n")
    (pkg / "step.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                 "    from precipdiff.training.loop import TrainState\n")
    (pkg / "checkpoint.py").write_text("from precipdiff.training import loop\n")
    found = circles(import_graph(tmp_path / "precipdiff"))
    assert found == [["precipdiff.training.loop", "precipdiff.training.step"]]
