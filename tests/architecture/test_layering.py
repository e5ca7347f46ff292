"""The stages import one way: each package of `pingan/` imports only the packages on lower levels.

Data walks core → raw_zone → quality → (ingest | warehouse | sharing) → ops → orchestration → cli;
a package on a level never imports one on its own level or above. Imports inside functions count too
(a lazy import is still a dependency)."""

import ast
from pathlib import Path

import pytest

PINGAN = Path(__file__).resolve().parents[2] / "pingan"

LEVELS = {
    "core": 0,
    "raw_zone": 1,
    "quality": 2,
    "ingest": 3,
    "warehouse": 3,
    "sharing": 3,
    "ops": 4,
    "orchestration": 5,
    "cli": 6,
}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pingan" else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pingan":  # `from pingan import raw_zone`
                found += [(node.lineno, f"pingan.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_every_top_level_entry_is_a_known_stage_package():
    entries = {p.name for p in PINGAN.iterdir() if not p.name.startswith("__")}
    assert entries == set(LEVELS), f"pingan/ should hold only the stage packages, found {sorted(entries)}"


@pytest.mark.parametrize("package", sorted(LEVELS))
def test_package_imports_only_lower_levels(package):
    level = LEVELS[package]
    violations = []
    for path in sorted((PINGAN / package).rglob("*.py")):
        for lineno, module in _imports(path):
            target = _package_of(module)
            if target is None or target == package or target not in LEVELS:
                continue
            if LEVELS[target] >= level:
                violations.append(f"{path.relative_to(PINGAN.parent)}:{lineno} imports {module}")
    assert not violations, f"{package} (level {level}) imports at or above its level:\n" + "\n".join(
        violations
    )
