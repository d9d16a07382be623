"""The package's shape (docs/architecture.md), checked from the source: layers import only
downwards, no import cycles, imports inside functions only for optional dependencies (each with
its reason on the line), and no module takes another's private (_name) function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mnistgan"

# the stages of the data path, lowest first; a module may import its own layer or lower ones
LAYERS = [
    [
        "version",
        "errors",
        "ranks",
        "files",
        "config",
        "presets",
        "hardware",
        "plotting",
        "data",
        "rundir",
        "sweepdir",
        "userdata",
    ],
    ["models"],
    ["generator"],
    ["training", "exporting", "evaluator"],
    ["sweep", "reporting"],
    ["cli"],
    ["__init__", "__main__"],
]
# imports between different parts of one layer above the bottom one, all others refused: training
# calls the evaluator (--eval-every, metrics.json). The bottom layer's modules import each other freely
# (without cycles).
ACROSS_ONE_LAYER = {("training", "evaluator")}
OPTIONAL = (
    "optuna",
    "sqlalchemy",
    "h5py",
    "torch.utils.tensorboard",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "keras",
    "fcntl",
    "msvcrt",
    # not optional, but slow to import (torchmetrics.image ~2 s with scipy, torchvision ~1.5 s): only
    # the commands that use them pay for them
    "torchmetrics",
    "torchvision",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """'mnistgan.training.loop' -> 'training'; 'mnistgan' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The mnistgan modules an import statement loads (a package's __init__ counts as the package)."""
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
    return sorted({n for n in names if n in MODULES})


def imports(top_level: bool):
    """(module, line, statement node, targets) for every import at module level (or inside functions)."""
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and (id(node) not in in_function) == top_level:
                yield module, node, resolve(module, node)


def test_layers_import_only_downwards():
    wrong = []
    for module, node, targets in imports(top_level=True):
        for target in targets:
            a, b = part_of(module), part_of(target)
            if a == b or target == "mnistgan":
                continue
            across = layer_of(b) == layer_of(a) > 0 and (a, b) not in ACROSS_ONE_LAYER
            if layer_of(b) > layer_of(a) or across:
                wrong.append(f"{module}:{node.lineno} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for module, _, targets in imports(top_level=True):
        graph[module].update(t for t in targets if t != module)
    done, path = set(), []

    def visit(m):
        if m in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(m) :] + [m]))
        if m in done:
            return
        path.append(m)
        for t in sorted(graph[m]):
            visit(t)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_imports_inside_functions_are_optional_dependencies_with_a_reason():
    wrong = []
    for module, node, _ in imports(top_level=False):
        name = node.names[0].name if isinstance(node, ast.Import) else (node.module or "")
        line = MODULES[module].read_text(encoding="utf-8").splitlines()[node.lineno - 1]
        if getattr(node, "level", 0) or not name.startswith(OPTIONAL) or "#" not in line:
            wrong.append(f"{module}:{node.lineno}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    wrong = [
        f"{module}:{node.lineno} takes {a.name} from {node.module}"
        for module, node, _ in imports(top_level=True)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if a.name.startswith("_") and a.name != "__version__"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_the_whole_package():
    """The checks above read every module: a layer table that missed a folder would pass vacuously."""
    parts = {part_of(m) for m in MODULES}
    assert parts <= {p for names in LAYERS for p in names}
    assert {"training", "models", "generator", "cli", "sweep", "reporting"} <= parts
    assert sum(1 for _ in imports(top_level=True)) > 200
