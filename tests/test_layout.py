"""The package's import graph follows the layering of README "Layout": no cycles, no upward arrows.

Every ``import`` statement in ``jaxsr/`` counts, also the ones inside functions (a lazy import
is still a dependency). A module may import modules of its own layer or of lower layers.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxsr"

# Lowest first. A module belongs to the first entry that is its name or a package above it.
LAYERS: list[tuple[str, ...]] = [
    ("jaxsr.errors", "jaxsr.runtime", "jaxsr.files", "jaxsr.color", "jaxsr.imresize",
     "jaxsr.degradations", "jaxsr.metrics", "jaxsr.parallel", "jaxsr.realworld"),
    ("jaxsr.models",),
    ("jaxsr.losses", "jaxsr.inference", "jaxsr.checkpoint", "jaxsr.optim"),
    ("jaxsr.data", "jaxsr.convert"),
    ("jaxsr.eval_lib", "jaxsr.loading", "jaxsr.report", "jaxsr.zoo", "jaxsr.export"),
    ("jaxsr.tasks",),
    ("jaxsr.train_lib",),
    ("jaxsr.recipes", "jaxsr.commands", "jaxsr.cli", "jaxsr.__main__", "jaxsr"),
]


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
  return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(name: str) -> int:
  best = None
  for i, members in enumerate(LAYERS):
    for m in members:
      if (name == m or name.startswith(m + ".")) and (best is None or len(m) > len(best[1])):
        best = (i, m)
  if best is None:
    raise AssertionError(f"{name} is in no layer: add it to README Layout and LAYERS")
  return best[0]


def _imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
  """The jaxsr modules ``name`` imports (``from jaxsr.x import y`` counts as jaxsr.x.y when
  that is a module, else jaxsr.x)."""
  tree = ast.parse(path.read_text(), filename=str(path))
  is_package = path.name == "__init__.py"
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
      else:
        module = node.module or ""
      targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                 for a in node.names]
    else:
      continue
    for t in targets:
      if t == "jaxsr" or t.startswith("jaxsr."):
        while t not in known and "." in t:
          t = t.rsplit(".", 1)[0]
        if t != name:
          found.add(t)
  return found


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  known = set(modules)
  return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_module_has_a_layer():
  for name in _modules():
    _layer(name)


def test_no_upward_imports():
  upward = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
            for a, deps in _graph().items() for b in sorted(deps)
            # a package's __init__ may re-export its own submodules
            if _layer(b) > _layer(a) and not b.startswith(a + ".")]
  assert not upward, "\n".join(upward)


def test_no_import_cycles():
  graph = _graph()
  # A package __init__ importing its submodules is not a cycle in the sense that matters here
  # (the submodules never import the package back); drop those edges.
  graph = {a: {b for b in deps if not b.startswith(a + ".")} for a, deps in graph.items()}
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(node: str) -> list[str] | None:
    state[node] = 1
    stack.append(node)
    for dep in sorted(graph.get(node, ())):
      if state.get(dep) == 1:
        return stack[stack.index(dep):] + [dep]
      if dep not in state and (cycle := visit(dep)):
        return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state and (cycle := visit(node)):
      pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_lazy_imports(tmp_path):
  # The test above would be empty if _imports missed imports inside functions.
  source = tmp_path / "m.py"
  source.write_text("def f():\n  from jaxsr import train_lib\n  import jaxsr.models.common\n")
  known = {"jaxsr.train_lib", "jaxsr.models", "jaxsr.models.common", "jaxsr.m"}
  assert _imports("jaxsr.m", source, known) == {"jaxsr.train_lib", "jaxsr.models.common"}
