"""The one command-line convention of `pipeline`, `tokenizer` and `train`.

A command is a module with `add_arguments(parser)`, `run(args)` and a DESCRIPTION (or its
docstring) that becomes the command's --help text. A group of commands (`pipeline download
SOURCE`, `pipeline models KIND`) is a module with a COMMANDS list of its own, dispatched the
same way one level down. A CLI lists its commands by name, module path and one line of help:
a module is imported only when its command runs, so `train --help` lists every command without
loading torch.

A flag that was renamed keeps its old spelling as a hidden alias (`add_renamed`) that says once,
on stderr, which spelling to use instead.

A command that keeps no work to resume from (`pipeline plan`: its sample runs are in a temporary
folder) says so in a RERUN_HINT of its own, which replaces the CLI's "rerun ... to resume" in the
lines that end it on Ctrl-C, SIGTERM or a full disk.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pipeline.common.errors import UserError, exit_on_errors


@dataclass(frozen=True)
class Command:
    name: str  # the word on the command line
    module: str  # dotted path: add_arguments() and run(), or a COMMANDS list of its own
    help: str  # one line in the listing of `PROG --help`


# The interrupt line of a command that keeps no run (stats, verify, diff, audit, report: it reads, or
# writes one file whole at its end), where "rerun ... to resume" would promise what it does not do.
READ_ONLY_HINT = "rerun the same command (it keeps no run to resume)"


def main(prog: str, description: str, commands: Sequence[Command], argv: Sequence[str] | None, rerun_hint: str,
         default: str | None = None) -> None:
    """Run the command named by argv's first word inside `exit_on_errors(prog, rerun_hint)`.

    `default` is the module run when the first word names no command (`train --steps 200`
    trains): its parser then reads every argument and its --help lists the commands too.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    with exit_on_errors(prog, rerun_hint):
        dispatch(prog, description, commands, words, default)


def without_blas_threads() -> None:
    """Keep numpy's OpenBLAS from starting its threads in this process and the ones it starts.

    At import it starts a thread per core that spins for about a tenth of a second waiting for
    work: 0.1 s of CPU per process (an eighth of a small `pipeline run`, and every Ray worker's).
    `pipeline` and `tokenizer` never multiply matrices; their parallelism is processes. Not for
    `train`: torch uses OpenBLAS on some machines. A value the user set is kept.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def dispatch(prog: str, description: str, commands: Sequence[Command], argv: list[str],
             default: str | None = None, metavar: str = "COMMAND") -> None:
    """Import and run the command `argv[0]` names, or `default`; else print the listing."""
    by_name = {command.name: command for command in commands}
    if argv and argv[0] in by_name:
        command = by_name[argv[0]]
        module = importlib.import_module(command.module)
        sub_prog = f"{prog} {command.name}"
        group = getattr(module, "COMMANDS", None)
        if group is not None:
            dispatch(sub_prog, describe(module), group, argv[1:], metavar=getattr(module, "METAVAR", "COMMAND"))
            return
        run_module(module, sub_prog, describe(module), argv[1:])
        return
    if argv and not argv[0].startswith("-") and default is None:
        raise UserError(f"{prog} {argv[0]}: unknown {metavar.lower()} (known: {', '.join(by_name)})")
    if default is not None:
        run_module(importlib.import_module(default), prog, description, argv, epilog=listing(commands))
        return
    chooser = argparse.ArgumentParser(prog=prog, description=description, epilog=listing(commands, metavar),
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    chooser.add_argument("command", metavar=metavar, choices=list(by_name), help="one of those listed below")
    if not argv:  # a bare `pipeline`: show what it can do, and fail like any incomplete command
        chooser.print_help()
        sys.exit(2)
    chooser.parse_args(argv[:1])  # -h prints the listing; another flag is argparse's error
    raise AssertionError("unreachable: argv[0] named no command and argparse accepted it")


def run_module(module: ModuleType, prog: str, description: str, argv: list[str], epilog: str | None = None) -> None:
    """Parse `argv` with the parser the module's add_arguments() builds, then run it."""
    args = parse(module, prog, argv, description, epilog)
    hint = getattr(module, "RERUN_HINT", None)
    if hint is None:
        module.run(args)
        return
    # Inside the CLI's own: this one ends the command first, with the module's hint and the CLI's name.
    with exit_on_errors(prog.split()[0], hint):
        module.run(args)


def parse(module: ModuleType, prog: str, argv: Sequence[str], description: str | None = None,
          epilog: str | None = None) -> argparse.Namespace:
    """The arguments of one command module, as the CLI parses them (tests call it directly)."""
    parser = argparse.ArgumentParser(prog=prog, description=description or describe(module), epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser.parse_args(list(argv))


def describe(module: ModuleType) -> str:
    """A command's --help text: its DESCRIPTION, else its module docstring."""
    return str(getattr(module, "DESCRIPTION", None) or module.__doc__ or "").strip()


def listing(commands: Sequence[Command], metavar: str = "COMMAND") -> str:
    """The table of commands under --help: name and one line each."""
    width = max(len(command.name) for command in commands)
    rows = "\n".join(f"  {command.name:<{width}}  {command.help}" for command in commands)
    return f"{metavar.lower()}s (each with its own --help):\n{rows}"


def path_arg(text: str) -> str:
    """The argparse type of every flag that names a file or folder: an empty value is refused.
    `Path("")` is the current folder, so `--out ""` wrote into it and `--config ""` read nothing
    at all, where the user surely meant something else (an unset shell variable)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (it would mean the current folder); give a path")
    return text


class RenamedFlag(argparse.Action):
    """An old spelling of a renamed flag: stores into the new flag's destination and prints one
    line to stderr saying which spelling to use instead."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(parser: argparse.ArgumentParser, new: argparse.Action, *old: str) -> None:
    """Keep the old spellings `old` of the flag `new` (the action add_argument returned) working,
    hidden from --help: they store into the same destination, with the same type and nargs."""
    for spelling in old:
        parser.add_argument(spelling, dest=new.dest, action=RenamedFlag, new=new.option_strings[0],
                            type=new.type, nargs=new.nargs, choices=new.choices, metavar=new.metavar,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_corpus_and_source(parser: argparse.ArgumentParser) -> None:
    """`[SOURCE] [--corpus DIR]` of the commands that read finished runs (stats, verify); the
    old spelling --output still works."""
    parser.add_argument("source", nargs="?", help="one source (default: every source found under --corpus)")
    corpus = parser.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                                 help="corpus root (default %(default)s)")
    add_renamed(parser, corpus, "--output")


def report_checked(prog: str, name: str, what: str, problems: list[str]) -> int:
    """The lines of one folder a verify command checked: each problem as `PROG: error: ...` on
    stderr, then `NAME: WHAT, ok` (or `N bad`) on stdout. Returns the number of problems: the
    command exits 2 when the folders' sum is not 0."""
    for line in problems:
        print(f"{prog}: error: {line}", file=sys.stderr)
    print(f"{name}: {what}, {'ok' if not problems else f'{len(problems)} bad'}")
    return len(problems)
