"""The layout rules of the tree, read from the source files with `ast` (nothing is imported):
no import cycle between project modules, function-local imports included; pipeline/ imports
nothing from sources/ (sources are plugins, found through entry points); only a cli.py or a command imports pipeline.commands;
pipeline/ stays split into sub-packages; no product module grows past 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "sources", "tokenizer", "train")
MAX_MODULE_LINES = 600
MAX_FILES_DIRECTLY_IN_PIPELINE = 12
COMMANDS = "pipeline.commands"


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports anywhere in its body (top level or inside functions).
    `from a.b import c` counts a.b.c when that is a module, else a.b."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            # The deepest project module that the dotted name starts with.
            parts = target.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None. A package's __init__ importing its own
    submodules is not a cycle of interest, so edges from a package to its children are ignored."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_between_project_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_sees_function_local_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from pkg.x import y\n")
    assert imported_modules("m", source, {"m", "pkg.x", "pkg"}) == {"pkg.x"}


def test_pipeline_imports_nothing_from_sources() -> None:
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if name == "pipeline" or name.startswith("pipeline.")
        for target in targets
        if target == "sources" or target.startswith("sources.")
    )
    assert offenders == []


def command_importers(graph: dict[str, set[str]]) -> list[str]:
    """Modules other than a cli.py or a command that import a command: what a command holds
    (a mixture, a corpus size) belongs in a module that products and commands both import."""
    def is_command(module: str) -> bool:
        return module == COMMANDS or module.startswith(COMMANDS + ".")

    return sorted(f"{name} imports {target}" for name, targets in graph.items()
                  if not (is_command(name) or name.rsplit(".", 1)[-1] == "cli")
                  for target in targets if is_command(target))


def test_only_a_cli_or_a_command_imports_pipeline_commands() -> None:
    assert command_importers(import_graph()) == []


def test_command_importers_sees_every_other_module() -> None:
    graph = {"pipeline.commands.mix": {"pipeline.commands.stats"}, "tokenizer.cli": {"pipeline.commands.mix"},
             "pipeline.commands": {"pipeline.commands.run"}, "train.data": {"pipeline.commands.mix"},
             "tokenizer.client": {"pipeline.commands"}, "pipeline.commandsx": {"pipeline.commands.run"},
             "train.loop": {"pipeline.commandsx"}}
    assert command_importers(graph) == ["pipeline.commandsx imports pipeline.commands.run",
                                        "tokenizer.client imports pipeline.commands",
                                        "train.data imports pipeline.commands.mix"]


def test_pipeline_is_split_into_sub_packages() -> None:
    direct = sorted(p.name for p in (REPO / "pipeline").glob("*.py"))
    assert len(direct) <= MAX_FILES_DIRECTLY_IN_PIPELINE, direct
    for layer in ("engine", "formats", "text", "filters", "transforms", "dedup", "commands", "common"):
        assert (REPO / "pipeline" / layer / "__init__.py").exists(), layer


def test_no_product_module_over_600_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in module_files().values()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_tests_mirror_the_packages() -> None:
    """Every test folder under tests/ names a package folder of the product."""
    product = {str(p.relative_to(REPO)) for package in PACKAGES for p in [REPO / package, *(REPO / package).rglob("*")]
               if p.is_dir() and p.name != "__pycache__"}
    tests = {str(p.relative_to(REPO / "tests")) for p in (REPO / "tests").rglob("*")
             if p.is_dir() and p.name != "__pycache__" and p.name != "hostile" and "hostile" not in p.parts}
    assert tests - product == set()
