"""Transforms: per-document stages that rewrite a document's text, each applying a cleaner of
pipeline/text/ (LaTeX, wikitext, Gutenberg boilerplate, code licence headers).

A transform drops a document only when its cleaner cannot read it or leaves nothing of it, with
the cleaner's reason (`no_section`, `empty_after_cleaning`). A stage that only keeps or drops
documents is a filter (pipeline/filters/).
"""
