"""Leading licence headers go, in each comment syntax; shebangs, includes, imports and code stay."""

from __future__ import annotations

from pipeline.text.code_headers import SYNTAX_BY_EXTENSION, strip_license_header


def strip(text: str, ext: str) -> str:
    return strip_license_header(text, SYNTAX_BY_EXTENSION[ext])


def test_c_block_header_goes_and_includes_stay() -> None:
    text = "/* Copyright 2020 A.\n * MIT licence.\n */\n\n#include <stdio.h>\n#include <string.h>\nint x;\n"
    assert strip(text, "c") == "#include <stdio.h>\n#include <string.h>\nint x;\n"


def test_c_line_comment_header_and_code_after_block_closer() -> None:
    assert strip("// Copyright 2020 A.\n// All rights reserved.\npackage main\n", "go") == "package main\n"
    assert strip("/* (c) A */ int x;\n", "c") == "int x;\n"


def test_shebang_and_encoding_line_stay() -> None:
    text = "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n# Copyright A\n# Licensed MIT\n\nimport os\n"
    assert strip(text, "py") == "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\nimport os\n"


def test_comments_that_are_not_licences_stay() -> None:
    text = "# Helpers for parsing dates.\nimport datetime\n"
    assert strip(text, "py") == text
    c = "/* A fast list. */\n#include <stdlib.h>\n"
    assert strip(c, "c") == c


def test_several_licence_groups_go_until_the_first_other_comment() -> None:
    text = "# Copyright A\n\n# SPDX-License-Identifier: MIT\n\n# Module docs.\nx = 1\n"
    assert strip(text, "py") == "# Module docs.\nx = 1\n"


def test_other_comment_syntaxes() -> None:
    assert strip("-- Copyright A\n-- Licensed Apache\nSELECT 1;\n", "sql") == "SELECT 1;\n"
    assert strip("--[[ Copyright A\n licence ]]\nlocal x = 1\n", "lua") == "local x = 1\n"
    assert strip(";; Copyright A\n;; GPL licence\n(defun f () 1)\n", "el") == "(defun f () 1)\n"
    assert strip("<!-- Copyright A -->\n<html></html>\n", "html") == "<html></html>\n"
    xml = '<?xml version="1.0"?>\n<!-- (c) A, licensed MIT -->\n<root/>\n'
    assert strip(xml, "xml") == '<?xml version="1.0"?>\n<root/>\n'
    assert strip("{- Copyright A -}\nmodule M where\n", "hs") == "module M where\n"


def test_unterminated_block_is_left_alone() -> None:
    text = "/* Copyright A, never closed\nint x;\n"
    assert strip(text, "c") == text
