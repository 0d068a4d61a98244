"""A plugin distribution written the way pip installs one: its metadata with entry points in a
`<name>.dist-info` folder, which importlib.metadata finds once the folder is on sys.path (or
PYTHONPATH). How tests register sources of their own through herd's real registry."""

from __future__ import annotations

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
