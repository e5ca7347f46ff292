"""Shape rules the layering test does not see: modules talk through public names, functions do one job.

A name starting with `_` belongs to its module; another module that needs it asks for a public seam
(rename it, or add a public function). A function longer than about 60 lines does several jobs; the
allow-list names the few being broken up right now, and shrinks to nothing."""

import ast
from pathlib import Path

PINGAN = Path(__file__).resolve().parents[2] / "pingan"
MAX_LINES = 60
# none left: a function that grows past the limit is split, not listed here
LONG_FUNCTIONS_ALLOWED: set[str] = set()


STORE_BUILT_ALSO_IN: set[str] = set()


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(PINGAN.rglob("*.py")):
        parts = path.relative_to(PINGAN.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(module: str, tree: ast.Module) -> list[str]:
    """`from pingan.x import _y`, and `x._y` on a pingan module imported under the name `x`."""
    found, imported = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pingan"):
            for alias in node.names:
                if _private(alias.name) and node.module != module:
                    found.append(f"{module}:{node.lineno} imports {node.module}.{alias.name}")
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pingan") and alias.asname:
                    imported[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name):
            target = imported.get(node.value.id)
            if target is not None and target != module:
                found.append(f"{module}:{node.lineno} uses {target}.{node.attr}")
    return found


def long_functions(module: str, tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method, nested ones included, over MAX_LINES."""
    out = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES:
                out.append((f"{module}.{prefix}{node.name}", lines))
            out += long_functions(module, node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            out += long_functions(module, node, f"{prefix}{node.name}.")
        else:
            out += long_functions(module, node, prefix)
    return out


def test_no_module_imports_another_modules_private_names():
    found = [hit for module, tree in _modules() for hit in private_imports(module, tree)]
    assert not found, "private names used across modules (make them public seams):\n" + "\n".join(found)


def test_no_function_exceeds_sixty_lines_outside_the_allow_list():
    found = [
        f"{name}: {lines} lines"
        for module, tree in _modules()
        for name, lines in long_functions(module, tree)
        if name not in LONG_FUNCTIONS_ALLOWED
    ]
    assert not found, f"functions over {MAX_LINES} lines (split them into one job each):\n" + "\n".join(found)


def store_constructions(module: str, tree: ast.Module) -> list[str]:
    return [
        f"{module}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Store"
    ]


def test_stores_are_built_by_the_one_factory():
    found = [
        hit
        for module, tree in _modules()
        if module != "pingan.core.storage" and module not in STORE_BUILT_ALSO_IN
        for hit in store_constructions(module, tree)
    ]
    assert not found, "Store(...) outside pingan.core.storage (use open_store / lake_store):\n" + "\n".join(
        found
    )


def test_the_hub_zone_is_defined_once():
    named = [
        f"{module}:{node.lineno}"
        for module, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == "Asia/Shanghai"
    ]
    # the canonical model's TZ (HUB_ZONE beside it), and a feed spec's default zone (declared per feed)
    assert [hit.split(":")[0] for hit in named] == ["pingan.core.canonical", "pingan.core.feed_spec"], named


def test_the_checks_catch_what_they_look_for():
    # the rules must be able to fail: a private import, a private attribute and a long function
    tree = ast.parse(
        "from pingan.core.storage import _x\nimport pingan.core.storage as st\nst._y()\n"
        "def f():\n" + "    pass\n" * (MAX_LINES + 1)
    )
    assert len(private_imports("pingan.ops.demo", tree)) == 2
    assert long_functions("pingan.ops.demo", tree) == [("pingan.ops.demo.f", MAX_LINES + 2)]
    assert store_constructions("pingan.ops.demo", ast.parse("s = Store('file:///x')")) == [
        "pingan.ops.demo:1"
    ]
