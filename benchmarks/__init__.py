"""Benchmarks of the flow matching suite: speed and sample quality, measured side by side.

Run ``python -m benchmarks.run`` (or ``make bench``); it writes ``benchmarks/results.json``,
``figures/benchmarks.png`` and prints a table. ``python -m benchmarks.report`` turns the JSON
into the README's markdown table. Nothing runs at import time.
"""
