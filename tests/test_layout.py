"""The house rules, checked: imports point down the layers, files stay short, no name hides
another, no model is chosen by comparing its name."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "semivae"

# lowest first; a module may import from its own package or from a lower layer only
LAYERS = [
    {"errors", "version"},
    {"atomic", "options", "masks"},
    {"data", "nn", "objectives"},
    {"models"},
    {"config"},
    {"runs"},
    {"eval"},
    {"viz"},
    {"train"},
    {"export", "sklearn"},
    {"cli"},
    {"__init__", "__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: Path) -> str:
    rel = module.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(module: Path) -> list[tuple[int, str]]:
    """(line, top-level part of semivae) of every semivae import in ``module``, lazy ones included."""
    package = [p for p in module.relative_to(SRC.parent).with_suffix("").parts]
    if module.name != "__init__.py":
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            if target[:1] != ["semivae"]:
                continue
            if len(target) > 1:
                names = [target[1]]
            else:  # from semivae import x: a module or package of semivae, else the package's own __init__
                names = [a.name if (SRC / a.name).is_dir() or (SRC / f"{a.name}.py").is_file() else "__init__"
                         for a in node.names]
            out += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("semivae.")]
    return out


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_layers(module):
    part = _part(module)
    for line, target in _imports(module):
        if target == part:
            continue
        where = f"{module.relative_to(SRC)}:{line}"
        assert LAYER[target] < LAYER[part], f"{where}: {part} (layer {LAYER[part]}) imports {target} ({LAYER[target]})"


def test_every_package_has_a_layer():
    assert {_part(m) for m in MODULES} <= set(LAYER)


@pytest.mark.parametrize("folder", ["src", "tests", "benchmarks"])
def test_no_file_is_over_400_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_no_model_is_chosen_by_comparing_its_name():
    pattern = re.compile(r"""(==|!=)\s*["'](semivae|m2|m1m2|pspec)["']|["'](semivae|m2|m1m2|pspec)["']\s*(==|!=)""")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in MODULES for i, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line)]
    assert not hits


def test_no_name_hides_a_module():
    import semivae
    import semivae.eval.evaluation
    import semivae.train.loop
    import semivae.train.training

    assert callable(semivae.train) and semivae.train.loop.fit  # the function and the package, one object
    assert semivae.train.training.train.__name__ == "train"
    assert callable(semivae.eval.evaluate) and semivae.eval.evaluation.evaluate is semivae.eval.evaluate
    assert semivae.evaluate is semivae.eval.evaluate
