"""The GitHub source end to end on repositories the test writes: licence, boilerplate,
dedup, quality and binary handling, with exact counts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from sources.github import GitHub, GitHubConfig
from pipeline.commands.sample import write_samples
from sources.samples.github import LICENSES
from tests.installed_licences import installed_licence

C_WITH_HEADER = """/*
 * Copyright (c) 2023 Example Authors
 * Licensed under the MIT licence; see LICENSE.
 */
#include <stdio.h>
#include "shapes.h"

int area(int w, int h) {
    return w * h;
}
"""
PY_WITH_SHEBANG = """#!/usr/bin/env python3
# Copyright 2023 Example Authors. All rights reserved.

import sys

print(sys.argv)
"""
SHARED = "def shared_helper(value):\n    return value + 1\n"


def _repo(root: Path, name: str, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _license(kind: str) -> str:
    return LICENSES[kind].format(year=2023, owner="Example Authors")


def _rows(folder: Path) -> dict[str, dict]:
    return {r["id"]: r for p in sorted(folder.glob("shard-*.arrow")) for r in Dataset.from_file(str(p)).to_list()}


def _run(inputs: Path, out: Path, workers: int = 1):
    return run_source(GitHub(), str(inputs), str(out), workers=workers, show_progress=False)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    _repo(root, "mit-shapes", {
        "LICENSE": _license("MIT"),
        "src/shapes.c": C_WITH_HEADER,
        "bin/tool.py": PY_WITH_SHEBANG,
        "lib/shared.py": SHARED,
        "dist/app.min.js": "var a=1;" * 200 + "\n",  # one 1600-character line
        "img/icon.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01",
    })
    _repo(root, "gpl-editor", {"COPYING": _license("GPL-3.0"), "main.c": "int main(void) { return 0; }\n"})
    _repo(root, "other-bsd", {"LICENSE.md": _license("BSD-3-Clause"), "vendor/shared.py": SHARED})
    return root


def test_licences_boilerplate_dedup_quality_and_binary(repos: Path, tmp_path: Path) -> None:
    report = _run(repos, tmp_path / "out", workers=2)
    stages = {s["name"]: s for s in report.stats["stages"]}
    # 10 files: 3 licence files are not documents, the PNG is skipped as binary.
    assert stages["read"] == {"name": "read", "in": 10, "out": 6, "dropped": {"license_file": 3, "binary_file": 1}}
    assert stages["license"]["dropped"] == {"license_GPL-3.0": 1}
    assert stages["code_quality"]["dropped"] == {"max_line_length_over_1000": 1}
    assert stages["exact_dedup"]["dropped"] == {"duplicate": 1}
    rows = _rows(tmp_path / "out/github")
    assert sorted(rows) == ["mit-shapes/bin/tool.py", "mit-shapes/lib/shared.py", "mit-shapes/src/shapes.c"]
    # The GPL repository is gone, the MIT one kept, with its metadata.
    assert rows["mit-shapes/src/shapes.c"] | {"text": ""} == {
        "id": "mit-shapes/src/shapes.c", "text": "", "source": "github", "repo": "mit-shapes",
        "path": "src/shapes.c", "license": "MIT", "language": "C"}
    # The C file loses its licence block and keeps its #include lines.
    assert rows["mit-shapes/src/shapes.c"]["text"] == C_WITH_HEADER.split(" */\n", 1)[1]
    assert rows["mit-shapes/src/shapes.c"]["text"].startswith('#include <stdio.h>\n#include "shapes.h"\n')
    # The script keeps its shebang and loses the copyright comment.
    assert rows["mit-shapes/bin/tool.py"]["text"] == "#!/usr/bin/env python3\nimport sys\n\nprint(sys.argv)\n"
    # The file present in two repositories is kept once: the smaller repo/path wins.
    assert rows["mit-shapes/lib/shared.py"]["text"] == SHARED


def test_dedup_is_global_whatever_the_task_split(repos: Path, tmp_path: Path) -> None:
    _run(repos, tmp_path / "a", workers=1)
    _run(repos, tmp_path / "b", workers=2)
    one, two = _rows(tmp_path / "a/github"), _rows(tmp_path / "b/github")
    assert one == two and len(one) == 3


def test_bigquery_rows_from_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [
        {"repo_name": "o/a", "path": "x.py", "content": "import os\nprint(os.name)\n", "license": "mit"},
        {"repo_name": "o/b", "path": "y.c", "content": "int y;\n", "license": "gpl-3.0"},
        {"repo_name": "o/c", "path": "z.png", "content": None, "license": "mit", "binary": True},
        {"repo_name": "o/d", "path": "w.go", "content": "package w\n", "license": "apache-2.0"},
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in/rows.jsonl").write_text("\n".join([json.dumps(r) for r in rows[:3]] + ["{broken"]) + "\n")
    pq.write_table(pa.Table.from_pylist(rows[3:]), tmp_path / "in/rows.parquet")
    report = _run(tmp_path / "in", tmp_path / "out")
    stages = {s["name"]: s for s in report.stats["stages"]}
    assert stages["read"]["dropped"] == {"binary_file": 1, "malformed_json": 1}
    assert stages["license"]["dropped"] == {"license_GPL-3.0": 1}
    kept = _rows(tmp_path / "out/github")
    assert {k: (v["repo"], v["path"], v["license"]) for k, v in kept.items()} == {
        "rows.jsonl:0": ("o/a", "x.py", "MIT"), "rows.parquet:0": ("o/d", "w.go", "Apache-2.0")}


def test_non_utf8_and_unusable_inputs(tmp_path: Path) -> None:
    _repo(tmp_path / "in", "r", {"LICENSE": _license("MIT"), "a.c": b"/* caf\xe9 */\nint a;\n", "b.c": "int b;\n"})
    (tmp_path / "in/bad.parquet").write_bytes(b"PAR1 not really")
    report = _run(tmp_path / "in", tmp_path / "out")
    assert report.stats["stages"][0]["dropped"] == {"license_file": 1, "not_utf8": 1}
    (failed,) = report.stats["files"]["failed"]
    assert failed["path"].endswith("bad.parquet") and "not a readable Parquet file" in failed["problem"]
    (tmp_path / "only").mkdir()
    (tmp_path / "only/bad.parquet").write_bytes(b"nope")
    with pytest.raises(UserError, match="bad.parquet: not a readable Parquet file"):
        _run(tmp_path / "only", tmp_path / "out2")


def test_sample_has_work_for_every_stage(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["github"])
    report = _run(tmp_path / "raw/github", tmp_path / "out", workers=2)
    stages = {s["name"]: s for s in report.stats["stages"]}
    assert stages["read"]["dropped"] == {"license_file": 7, "binary_file": 2, "malformed_json": 1, "not_utf8": 1}
    assert stages["license"]["dropped"] == {"license_GPL-3.0": 2, "license_GPL-2.0": 1, "license_none": 1}
    assert stages["code_quality"]["dropped"] == {"alnum_fraction_below_0.25": 1, "max_line_length_over_1000": 1,
                                                 "mean_line_length_over_100": 1}
    assert stages["exact_dedup"]["dropped"] == {"duplicate": 1}
    rows = _rows(tmp_path / "out/github")
    assert rows["dual-crate/src/lib.rs"]["license"] == "MIT"  # dual MIT/Apache: a permissive choice
    assert all("Copyright" not in r["text"] and "Licensed under" not in r["text"] for r in rows.values())


def test_licences_that_all_apply_and_programs_named_license_decide_as_code(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    # "AND": both licences apply, so the GPL's terms bind the code (it is no choice of MIT).
    _repo(root, "both", {"LICENSE": "SPDX-License-Identifier: GPL-3.0-only AND MIT\n", "lib.py": SHARED})
    _repo(root, "either", {"LICENSE": "SPDX-License-Identifier: GPL-3.0-only OR MIT\n", "lib.py": SHARED + "# b\n"})
    # license.py is a program: its MIT wording is a string in the code, not the repository's licence.
    _repo(root, "gpl-cli", {"COPYING": _license("GPL-3.0"), "license.py": f"MIT = {_license('MIT')!r}\n",
                            "cli.py": "from license import MIT\n\n\ndef main():\n    print(MIT)\n"})
    report = _run(root, tmp_path / "out")
    stages = {s["name"]: s for s in report.stats["stages"]}
    assert stages["license"]["dropped"] == {"license_GPL-3.0": 3}  # both/lib.py, gpl-cli/license.py, gpl-cli/cli.py
    assert {k: v["license"] for k, v in _rows(tmp_path / "out/github").items()} == {"either/lib.py": "MIT"}


def test_real_licence_files_decide_repositories(tmp_path: Path) -> None:
    gpl3 = Path("/usr/share/common-licenses/GPL-3")
    if not gpl3.is_file():
        pytest.skip(f"{gpl3} absent (Debian's base-files ships it)")
    # packaging is dual-licensed: LICENSE says "either" of LICENSE.APACHE and LICENSE.BSD.
    _repo(tmp_path / "raw", "packaging", {name: installed_licence("packaging", name).read_bytes()
                                          for name in ("LICENSE", "LICENSE.APACHE", "LICENSE.BSD")}
          | {"src/version.py": SHARED})
    _repo(tmp_path / "raw", "editor", {"COPYING": gpl3.read_bytes(), "main.c": "int main(void) { return 0; }\n"})
    report = run_source(GitHub(), str(tmp_path / "raw"), str(tmp_path / "out"), show_progress=False)
    assert {s["name"]: s for s in report.stats["stages"]}["license"]["dropped"] == {"license_GPL-3.0": 1}
    assert {k: v["license"] for k, v in _rows(tmp_path / "out/github").items()} == {
        "packaging/src/version.py": "BSD-2-Clause"}
    # A user who allows GPL-3.0 (it was detected as AGPL-3.0) keeps the editor; the dual
    # licensed repository is labelled with the licence the user allowed.
    config = GitHubConfig(licenses="GPL-3.0,Apache-2.0")
    run_source(GitHub(config), str(tmp_path / "raw"), str(tmp_path / "gpl"), show_progress=False)
    assert {k: v["license"] for k, v in _rows(tmp_path / "gpl/github").items()} == {
        "editor/main.c": "GPL-3.0", "packaging/src/version.py": "Apache-2.0"}


def test_a_parquet_file_damaged_inside_is_a_failed_input_never_a_traceback(tmp_path: Path) -> None:
    import io
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"repo_name": ["o/r"] * 500, "path": [f"a{i}.py" for i in range(500)],
                             "content": [f"x = {i}\n" for i in range(500)], "license": ["mit"] * 500}),
                   sink, row_group_size=100)
    data, rng = bytearray(sink.getvalue()), random.Random(34)  # a corruption pyarrow reads as invalid UTF-8
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(4, len(data) - 4)
        data[at] = rng.randrange(256)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "rows.parquet").write_bytes(bytes(data))
    _repo(tmp_path / "raw", "ok", {"LICENSE": _license("MIT"), "lib.py": SHARED})
    report = _run(tmp_path / "raw", tmp_path / "out")
    (failed,) = report.stats["files"]["failed"]
    assert failed["path"].endswith("rows.parquet")
    assert "damaged row group" in failed["problem"] or "not a readable Parquet file" in failed["problem"]
    assert report.documents_kept >= 1
