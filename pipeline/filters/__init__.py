"""Filters: per-document stages that keep a document or drop it with a reason, recording at most
the score they decided by (language, perplexity, classifier probability) in its metadata.

c4_quality is here as in C4 and datatrove: its rules drop a page, or by the same rules single
lines of it. A stage that rewrites text is a transform (pipeline/transforms/).
"""
