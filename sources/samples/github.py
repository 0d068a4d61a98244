"""Sample input of GitHub: repository folders with licence files, plus BigQuery-style rows.

Licence texts are short stand-ins written here that carry each licence's characteristic
phrase (what `pipeline.text.licenses.detect_license` looks for), not the licences themselves.
Repositories hold code with licence headers in several comment syntaxes, a shebang script,
a minified bundle, a binary image, a non-UTF-8 file, low-alphanumeric and long-line files,
and one file that also appears, byte for byte, in another repository.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

LICENSES = {
    "MIT": "Copyright (c) {year} {owner}\n\nPermission is hereby granted, free of charge, to anyone who obtains "
           "a copy of this software to deal in it without restriction, as long as this notice stays.\n\n"
           "The software is provided as is, without warranty of any kind.\n",
    "BSD-2-Clause": "Copyright (c) {year} {owner}\n\nRedistribution and use in source and binary forms, with or "
                    "without modification, are permitted when the notice above stays with the code.\n",
    "BSD-3-Clause": "Copyright (c) {year} {owner}\n\nRedistribution and use in source and binary forms, with or "
                    "without modification, are permitted when the notice above stays with the code. Neither the "
                    "name of the project nor its contributors may be used to endorse or promote derived products.\n",
    "Apache-2.0": "Apache License, Version 2.0 (stand-in for the sample)\n\nLicensed under the Apache License, "
                  "Version 2.0; you may use these files only in compliance with that licence.\n",
    "GPL-3.0": "This program is free software: it may be shared and changed under the terms of the GNU General "
               "Public License, version 3 or any later version, as published by the Free Software Foundation.\n",
}
NOUNS = ["vector", "matrix", "buffer", "parser", "socket", "cache", "queue", "token", "record", "stream",
         "window", "packet", "config", "session", "router", "schema"]
VERBS = ["read", "write", "parse", "merge", "split", "scale", "encode", "decode", "load", "store", "check",
         "count", "open", "close", "render", "resolve"]

SHARED_PY = '''"""String helpers shared by several projects."""


def slugify(title: str) -> str:
    words = [w for w in title.lower().split() if w.isalnum()]
    return "-".join(words)


def truncate(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
'''


def _name(rng: random.Random) -> str:
    return f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"


def _three_functions(rng: random.Random, separator: str, template: str,
                     spell: Callable[[str], str] = str, numbers: tuple[int, int] = (2, 9)) -> str:
    """Three functions from `template`, joined by `separator`: each a random `{name}` (as `spell`
    writes it) and a random `{n}` in `numbers`, drawn in that order."""
    return separator.join(template.format(name=spell(_name(rng)), n=rng.randint(*numbers)) for _ in range(3))


def c_file(rng: random.Random, owner: str, header: bool) -> str:
    body = "\n".join(
        f"int {_name(rng)}_{i}(int *values, int count) {{\n    int total = 0;\n"
        f"    for (int i = 0; i < count; i++) {{\n        total += values[i] * {rng.randint(2, 9)};\n    }}\n"
        f"    return total;\n}}\n" for i in range(rng.randint(2, 4)))
    head = (f"/*\n * Copyright (c) 2021 {owner}\n * All rights reserved.\n *\n"
            f" * Use of this file is governed by the licence in the LICENSE file.\n */\n") if header else ""
    return f"{head}#include <stdio.h>\n#include <stdlib.h>\n\n{body}"


def python_script(rng: random.Random, owner: str) -> str:
    funcs = _three_functions(rng, "\n\n", "def {name}(items):\n    return [x * {n} for x in items]")
    return (f"#!/usr/bin/env python3\n# Copyright 2022 {owner}. All rights reserved.\n"
            f"# Licensed under the terms in the LICENSE file at the top of this repository.\n\n"
            f"import sys\nfrom pathlib import Path\n\n\n{funcs}\n\n\nif __name__ == \"__main__\":\n"
            f"    print(sys.argv[1:], Path.cwd())\n")


def go_file(rng: random.Random, owner: str) -> str:
    funcs = _three_functions(rng, "\n", "func {name}(n int) int {{\n\treturn n * {n}\n}}\n",
                             lambda name: name.title().replace("_", ""))
    return (f"// Copyright 2020 {owner}. All rights reserved.\n// Use of this source code is governed by a "
            f"BSD-style license found in the LICENSE file.\n\npackage util\n\nimport \"fmt\"\n\n{funcs}\n"
            f"func Show() {{ fmt.Println(\"ok\") }}\n")


def java_file(rng: random.Random) -> str:
    cls = rng.choice(NOUNS).title()
    methods = _three_functions(rng, "\n", "    public int {name}(int x) {{\n        return x + {n};\n    }}\n",
                               lambda name: name.replace("_", ""), numbers=(1, 99))
    return (f"/*\n * Licensed under the Apache License, Version 2.0 (the \"License\");\n"
            f" * you may not use this file except in compliance with the License.\n */\n"
            f"package org.example.orbital;\n\nimport java.util.List;\n\n/** A {cls} with a few operations. */\n"
            f"public class {cls} {{\n{methods}}}\n")


def rust_file(rng: random.Random) -> str:
    return ("// SPDX-License-Identifier: BSD-2-Clause\n\n//! Path helpers.\n\nuse std::path::Path;\n\n"
            + "\n".join(f"pub fn {_name(rng)}(p: &Path) -> usize {{\n    p.components().count() + {i}\n}}\n"
                        for i in range(3)))


def lua_file(rng: random.Random) -> str:
    return (f"-- Copyright 2019 Orbital contributors\n-- Licensed under the Apache License, Version 2.0\n\n"
            f"local M = {{}}\n\nfunction M.{_name(rng)}(x)\n  return x * {rng.randint(2, 9)}\nend\n\nreturn M\n")


def html_file() -> str:
    return ("<!--\n  Copyright 2019 Orbital contributors.\n  Licensed under the Apache License, Version 2.0.\n-->\n"
            "<!doctype html>\n<html>\n  <body>\n    <h1>Orbital dashboard</h1>\n    <p>Status of every "
            "satellite, refreshed each minute.</p>\n  </body>\n</html>\n")


def minified_js(rng: random.Random) -> str:
    parts = [f"function {_name(rng)}{i}(a,b){{return a*{i}+b}}" for i in range(60)]
    return ";".join(parts) + "\n"


def _write_repo(root: Path, name: str, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _license(kind: str, owner: str) -> str:
    return LICENSES[kind].format(year=2021, owner=owner)


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(200))
    _write_repo(folder, "acme-geometry", {
        "LICENSE": _license("MIT", "Acme Geometry authors"),
        "README.md": "# acme-geometry\n\nSmall geometry helpers written in C, with Python tooling.\n",
        "src/vector.c": c_file(rng, "Acme Geometry authors", header=True),
        "src/matrix.c": c_file(rng, "Acme Geometry authors", header=False),
        "tools/run.py": python_script(rng, "Acme Geometry authors"),
        "util/strings.py": SHARED_PY,
        "web/bundle.min.js": minified_js(rng),
        "assets/logo.png": png,
        "data/points.csv": "x,y\n1,2\n3,4\n",
        "docs/diagram.md": "+------+------+\n|      |      |\n+------+------+\n|      |      |\n+------+------+\n",
        "config/defaults.yaml": "".join(f"option_{i}: \"{'a long default value, ' * 7}\"\n" for i in range(6)),
        "legacy/latin1.c": "/* caf\xe9 */\nint x;\n".encode("latin-1"),
    })
    _write_repo(folder, "tinyhttp", {
        "LICENSE.txt": _license("BSD-3-Clause", "The tinyhttp authors"),
        "util/strings.py": SHARED_PY,
        "server/handler.go": go_file(rng, "The tinyhttp authors"),
        "server/router.go": go_file(rng, "The tinyhttp authors"),
    })
    _write_repo(folder, "pathkit", {
        "COPYING": _license("BSD-2-Clause", "pathkit developers"),
        "src/lib.rs": rust_file(rng),
    })
    _write_repo(folder, "orbital", {
        "LICENSE": _license("Apache-2.0", "Orbital contributors"),
        "src/main/java/Orbit.java": java_file(rng),
        "scripts/orbit.lua": lua_file(rng),
        "web/index.html": html_file(),
    })
    _write_repo(folder, "dual-crate", {
        "LICENSE-MIT": _license("MIT", "dual-crate developers"),
        "LICENSE-APACHE": _license("Apache-2.0", "dual-crate developers"),
        "src/lib.rs": rust_file(rng),
    })
    _write_repo(folder, "copyleft-editor", {
        "COPYING": _license("GPL-3.0", "Editor hackers"),
        "src/buffer.c": c_file(rng, "Editor hackers", header=True),
        "src/main.c": c_file(rng, "Editor hackers", header=False),
    })
    _write_repo(folder, "unlicensed-scripts", {"deploy.sh": "#!/bin/sh\nset -e\necho deploying\n"})
    rows = [
        {"repo_name": "bq/calc", "path": "calc.py", "content": python_script(rng, "Calc authors"), "license": "mit"},
        {"repo_name": "bq/calc", "path": "lib/core.c", "content": c_file(rng, "Calc authors", True), "license": "mit"},
        {"repo_name": "bq/kernel-mod", "path": "mod.c", "content": c_file(rng, "Kernel people", True),
         "license": "gpl-2.0"},
        {"repo_name": "bq/calc", "path": "icon.ico", "content": None, "license": "mit", "binary": True},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(2, '{"repo_name": "bq/broken", "path": ')
    (folder / "bigquery-contents-000.jsonl").write_text("\n".join(lines) + "\n")
