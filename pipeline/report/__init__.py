"""`pipeline report`: what a finished corpus holds, read from its shards and stats, as one HTML page.

facts.py reads a source's corpus folder into numbers (bounded memory), charts.py draws them as
inline SVG, page.py lays out the self-contained page; pipeline/commands/report.py is the command.
"""
