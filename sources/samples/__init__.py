"""Sample writers: small raw inputs in each source's real format, good and bad documents mixed
so that every stage has something to keep and something to drop (`pipeline sample`,
pipeline/commands/sample.py).

Each source has a module here with `write(folder: Path, seed: int) -> None` writing into
`<raw root>/<source>/`, registered as an entry point of the group `herd.samples`.
Everything is generated: no third-party text is shipped.
"""
