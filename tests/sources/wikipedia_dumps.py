"""The raw folder most Wikipedia tests start from: one English dump, as `pipeline run wikipedia` finds it;
multistream dumps with their index, laid out as Wikimedia's; and where the real Wikipedia dumps are."""

from __future__ import annotations

import bz2
from pathlib import Path

from lxml import etree

from sources.samples.wikipedia import FOOTER, HEADER, Page, page_xml, write_dump

REPO = Path(__file__).resolve().parents[2]
# ../shared/realdata/wikipedia beside the project's checkout; a git worktree of it sits a level or
# two further down (/work/wt/<name>), so the nearest folder above the repository that has it.
REAL_WIKIPEDIA = next((folder / "shared" / "realdata" / "wikipedia" for folder in REPO.parents
                       if (folder / "shared" / "realdata" / "wikipedia").is_dir()),
                      REPO.parent / "shared" / "realdata" / "wikipedia")


def raw_enwiki(root: Path, pages: list[Page]) -> Path:
    """A new folder `root`/raw holding `pages` as enwiki's 20220701 pages-articles dump (one bz2 stream)."""
    raw = root / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    return raw


def multistream_names(lang: str = "en", date: str = "20220701") -> tuple[str, str]:
    """File names of a wiki's multistream dump and of its index, as Wikimedia names them."""
    stem = f"{lang}wiki-{date}-pages-articles-multistream"
    return f"{stem}.xml.bz2", f"{stem}-index.txt.bz2"


def write_multistream(folder: Path, pages: list[Page], per_stream: int = 3, lang: str = "en") -> tuple[Path, list[int]]:
    """A dump laid out like Wikimedia's (header stream, streams of pages, footer stream) and its
    index of `offset:page_id:title` lines; returns the dump and its page-stream offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    dump_name, index_name = multistream_names(lang)
    data = bz2.compress(HEADER.format(lang=lang).encode())
    offsets, index = [], []
    for i in range(0, len(pages), per_stream):
        offsets.append(len(data))
        index.extend(f"{len(data)}:{p.page_id}:{p.title}\n" for p in pages[i : i + per_stream])
        data += bz2.compress("".join(page_xml(p) for p in pages[i : i + per_stream]).encode())
    data += bz2.compress(FOOTER.encode())
    (folder / dump_name).write_bytes(data)
    (folder / index_name).write_bytes(bz2.compress("".join(index).encode()))
    return folder / dump_name, offsets


def pages_by_lxml(path: Path) -> list[tuple[int, str]]:
    """(id, title) of every page, read independently: the whole file decompressed, parsed by lxml."""
    root = etree.fromstring(bz2.decompress(path.read_bytes()))
    ns = {"m": root.nsmap[None]}
    return [(int(p.findtext("m:id", namespaces=ns)), p.findtext("m:title", namespaces=ns))
            for p in root.iterfind("m:page", ns)]
