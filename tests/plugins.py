"""A plugin distribution written the way pip installs one: its metadata with entry points in a
`<name>.dist-info` folder, which importlib.metadata finds once the folder is on sys.path (or
PYTHONPATH). How tests register sources of their own through herd's real registry."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def install_plugin(folder: Path, distribution: str, groups: dict[str, dict[str, str]]) -> Path:
    """Write `distribution`'s metadata and entry points (group -> name -> "module:attribute")
    into `folder`; returns `folder`, the path entry to add."""
    info = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return folder


def run_pipeline_with_sources(distribution: str, sources: dict[str, str]) -> None:
    """`pipeline` (this process's argv) with `sources` (name -> "module:Class") installed as a
    plugin beside the real ones, through the registry's entry points; the plugin's folder is
    removed after."""
    from pipeline.cli import main as pipeline_main

    plugins = Path(tempfile.mkdtemp(prefix="herd-plugin-"))
    try:
        install_plugin(plugins, distribution, {"herd.sources": sources})
        sys.path.append(str(plugins))
        pipeline_main(sys.argv[1:])
    finally:
        shutil.rmtree(plugins, ignore_errors=True)
