"""Generate the example notebooks in this directory (the HopX streaming-guide examples).

Run ``python notebooks/make_notebooks.py`` after editing a notebook here; the ``.ipynb``
files are written without outputs and with stable cell ids, so diffs stay readable.
Every cell uses only the Python 3.11 standard library plus IPython (what a HopX sandbox
has) and each notebook runs in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"name": "hopx-remote-python", "display_name": "HopX Remote Python", "language": "python"}
LANGUAGE_INFO = {
    "name": "python",
    "version": "3.11",
    "mimetype": "text/x-python",
    "file_extension": ".py",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "pygments_lexer": "ipython3",
    "nbconvert_exporter": "python",
}


def md(text: str, **metadata):
    return new_markdown_cell(text.strip("\n"), metadata=metadata)


def code(text: str, tags: list[str] | None = None):
    return new_code_cell(text.strip("\n"), metadata={"tags": tags} if tags else {})


NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["01-basic-streaming"] = [
    md("""
# Basic streaming

This notebook runs on the **HopX Remote Python** kernel: every cell is sent to a HopX
sandbox and its output is *streamed* back while the cell runs (`run_code_stream`).
Run the next cell and watch the steps appear one by one, not all at once at the end.
"""),
    code("""
import time

for i in range(5):
    print(f"Step {i+1}/5")
    time.sleep(0.3)
"""),
    md("""
Timestamps make the streaming visible: each line is printed (and delivered) about
half a second after the previous one.
"""),
    code("""
start = time.monotonic()
for tick in range(3):
    print(f"t+{time.monotonic() - start:.1f}s  tick {tick}", flush=True)
    time.sleep(0.5)
print("done")
"""),
    md("The sandbox keeps state between cells, like any Jupyter kernel:"),
    code("""
total = sum(range(1, 101))
total
"""),
]

NOTEBOOKS["02-stdout-vs-stderr"] = [
    md("""
# stdout and stderr

Both streams are forwarded from the sandbox as separate `stream` outputs
(`stdout` / `stderr`); when they interleave, the order in which they were written is kept.
"""),
    code("""
import sys
import time

for i in range(3):
    print(f"stdout: processing item {i}", flush=True)
    print(f"stderr: warning about item {i}", file=sys.stderr, flush=True)
    time.sleep(0.2)
print("stdout: finished", flush=True)
"""),
    md("Warnings and `logging` go to stderr too:"),
    code("""
import logging
import warnings

warnings.warn("this API is deprecated", UserWarning)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s", force=True)
logging.info("an info message")
print("and a normal print", flush=True)
"""),
]

NOTEBOOKS["03-progress-monitoring"] = [
    md("""
# Progress monitoring

Long-running work can report progress while it runs. A carriage return (`\\r`) moves
the cursor back to the start of the line, so the notebook shows a single bar that
updates in place instead of a new line per step.
"""),
    code("""
import sys
import time

total = 20
for i in range(total + 1):
    done = i * 30 // total
    sys.stdout.write(f"\\r[{'#' * done:<30}] {i * 100 // total:3d}%")
    sys.stdout.flush()
    time.sleep(0.05)
print()
print("complete")
"""),
    md("Plain percentage lines work everywhere, including logs:"),
    code("""
for pct in range(0, 101, 25):
    print(f"Progress: {pct}%")
    time.sleep(0.2)
"""),
    md("The same with `print(..., end=\"\\r\", flush=True)`:"),
    code("""
for item in range(1, 11):
    print(f"Processing item {item}/10", end="\\r", flush=True)
    time.sleep(0.1)
print("Processed 10 items      ")
"""),
]

NOTEBOOKS["04-environment-variables"] = [
    md("""
# Environment variables

Code runs inside the sandbox, so `os.environ` is the **sandbox's** environment, not your
machine's.
"""),
    code("""
import os

print("HOME =", os.environ.get("HOME"))
print("cwd  =", os.getcwd())
print("PATH has", len(os.environ.get("PATH", "").split(os.pathsep)), "entries")
"""),
    md("""
The kernel's own configuration — `HOPX_API_KEY` and the other `HOPX_*` settings — stays
on your machine and is never sent to the sandbox, so none of it is visible here:
"""),
    code("""
sorted(k for k in os.environ if "HOPX" in k.upper())
"""),
    md("Set a variable in one cell…"),
    code("""
os.environ["GREETING"] = "hello from the sandbox"
"""),
    md("…and read it in the next; child processes inherit it too."),
    code("""
import subprocess
import sys

child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.environ['GREETING'])"],
    capture_output=True, text=True, check=True,
)
print("child process sees:", child.stdout.strip())
os.environ["GREETING"]
"""),
]

NOTEBOOKS["05-error-handling"] = [
    md("""
# Error handling

Exceptions raised in the sandbox come back as ordinary Jupyter errors. Handle them with
`try`/`except` as usual.
"""),
    code("""
try:
    1 / 0
except ZeroDivisionError as exc:
    print(f"caught {type(exc).__name__}: {exc}")
"""),
    code("""
import json
import sys


def parse(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"bad JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=sys.stderr)
        return None
    finally:
        print(f"parsed {text!r}")


parse('{"ok": true}'), parse("{oops}")
"""),
    md("A handled exception can still show its traceback (on stderr):"),
    code("""
import traceback

try:
    {}["missing"]
except KeyError:
    traceback.print_exc()
print("carried on")
"""),
    md("""
An **uncaught** exception stops the cell and shows the sandbox traceback. This cell is
tagged `raises-exception`, so nbclient / `jupyter execute` continue past it (papermill
runs the remaining cells too, but still reports the error at the end).
"""),
    code("""
def check(value):
    if value < 0:
        raise ValueError(f"value must be >= 0, got {value}")
    return value


check(-1)
""", tags=["raises-exception"]),
    md("The kernel is still alive and keeps its state after the error:"),
    code("""
check(5)
"""),
]

NOTEBOOKS["06-data-processing"] = [
    md("""
# Data processing

A complete example using only the standard library: write a CSV in the sandbox's
working directory, read it back, aggregate it and show a summary table — streaming
progress along the way.
"""),
    code("""
import csv
import random
import time
from pathlib import Path

random.seed(42)
REGIONS = ["north", "south", "east", "west"]
PRODUCTS = ["widget", "gadget", "gizmo"]
ROWS = 2000
path = Path("sales.csv")

with path.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["order_id", "region", "product", "units", "unit_price"])
    for i in range(1, ROWS + 1):
        writer.writerow([
            i,
            random.choice(REGIONS),
            random.choice(PRODUCTS),
            random.randint(1, 20),
            round(random.uniform(2, 50), 2),
        ])
        if i % 500 == 0:
            print(f"wrote {i}/{ROWS} rows", flush=True)
            time.sleep(0.1)
print(f"{path.resolve()}: {path.stat().st_size} bytes")
"""),
    code("""
records = []
with path.open(newline="") as f:
    for n, row in enumerate(csv.DictReader(f), 1):
        row["units"] = int(row["units"])
        row["unit_price"] = float(row["unit_price"])
        row["revenue"] = row["units"] * row["unit_price"]
        records.append(row)
        if n % 500 == 0:
            print(f"read {n} rows", flush=True)
len(records)
"""),
    code("""
import statistics
from collections import Counter, defaultdict

revenue_by_region = defaultdict(list)
for r in records:
    revenue_by_region[r["region"]].append(r["revenue"])

summary = [
    {
        "region": region,
        "orders": len(revenues),
        "revenue": sum(revenues),
        "mean": statistics.mean(revenues),
        "median": statistics.median(revenues),
    }
    for region, revenues in sorted(revenue_by_region.items())
]
for s in summary:
    print(f"{s['region']:<6} orders={s['orders']:4d} revenue={s['revenue']:10.2f} "
          f"mean={s['mean']:6.2f} median={s['median']:6.2f}")

orders_by_product = Counter(r["product"] for r in records)
print("orders by product:", dict(orders_by_product.most_common()))
"""),
    code("""
from html import escape

from IPython.display import HTML

header = "".join(f"<th>{h}</th>" for h in ["Region", "Orders", "Revenue", "Mean", "Median"])
body = "".join(
    f"<tr><td>{escape(s['region'])}</td><td>{s['orders']}</td><td>{s['revenue']:,.2f}</td>"
    f"<td>{s['mean']:.2f}</td><td>{s['median']:.2f}</td></tr>"
    for s in summary
)
HTML(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
"""),
    md("Clean up the file:"),
    code("""
path.unlink()
print("removed", path)
"""),
]

NOTEBOOKS["07-rich-display"] = [
    md("""
# Rich display

Anything IPython can display in the sandbox comes back as rich output: HTML, Markdown,
SVG, images, JSON, updatable displays and the value of a cell's last expression.
"""),
    code("""
from IPython.display import HTML, JSON, SVG, Image, Markdown, clear_output, display

display(HTML("<p>Some <b>HTML</b> with a <span style='color:#6D28D9'>colour</span>.</p>"))
display(Markdown("### Markdown\\n\\n* a list item\\n* **bold** and `code`"))
"""),
    code("""
SVG(
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60">'
    '<rect x="2" y="2" width="116" height="56" rx="10" fill="#6D28D9"/>'
    '<text x="60" y="38" font-size="20" text-anchor="middle" fill="white">SVG</text>'
    "</svg>"
)
"""),
    md("A PNG built from scratch with `zlib` and `struct` (no imaging library needed):"),
    code("""
import struct
import zlib


def make_png(width, height, pixel):
    \"\"\"Encode an RGB image; pixel(x, y) returns an (r, g, b) tuple.\"\"\"
    raw = b"".join(
        b"\\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


png = make_png(96, 64, lambda x, y: (x * 255 // 95, y * 255 // 63, 160))
Image(data=png, format="png")
"""),
    code("""
JSON({"sandbox": "hopx", "cells": [1, 2, 3], "nested": {"ok": True}}, expanded=True)
"""),
    md("A raw MIME bundle: the front end picks the richest type it can render."),
    code("""
display({"text/plain": "plain text fallback", "text/html": "<i>HTML version</i>"}, raw=True)
"""),
    md("An output that updates in place (`display_id`):"),
    code("""
import time

handle = display(Markdown("starting…"), display_id=True)
for step in range(1, 6):
    time.sleep(0.2)
    handle.update(Markdown(f"step **{step}**/5"))
handle.update(Markdown("finished ✅"))
"""),
    md("`clear_output(wait=True)` replaces the cell's output on each iteration:"),
    code("""
for i in range(5):
    clear_output(wait=True)
    print(f"frame {i + 1}/5")
    time.sleep(0.2)
"""),
    md("And the last expression of a cell is its result (`execute_result`):"),
    code("""
{"png_bytes": len(png), "answer": 6 * 7}
"""),
]

NOTEBOOKS["08-parameters"] = [
    md("""
# Parameters (papermill)

The next cell is tagged `parameters`. Run with papermill to override its values, e.g.

```
papermill 08-parameters.ipynb out.ipynb -k hopx-remote-python -p n 5 -p greeting hi
```
"""),
    code("""
n = 3
greeting = "hello"
""", tags=["parameters"]),
    code("""
for i in range(n):
    print(f"{greeting} #{i + 1}")
"""),
    code("""
{"n": n, "greeting": greeting}
"""),
]


NOTEBOOKS["09-widgets-and-progress"] = [
    md("""
# Widgets and live progress

Widgets run in the sandbox and show here: their comm messages travel with the cell's output
and, for updates made later (threads, sliders you move), over the sandbox's kernel channel.
This notebook needs `ipywidgets`, `tqdm` and `matplotlib` in the sandbox (the local sandbox
has them when hopx-kernel's test extra is installed).
"""),
    code("""
from tqdm.auto import tqdm

total = 0
for i in tqdm(range(100), desc="summing"):
    total += i
total
"""),
    md("""
`interact` builds a slider; moving it re-runs `plot` in the sandbox and the figure shows below.
"""),
    code("""
import matplotlib.pyplot as plt
from ipywidgets import interact


@interact(freq=(1, 10))
def plot(freq=3):
    xs = [i / 100 for i in range(101)]
    plt.figure(figsize=(4, 2))
    plt.plot(xs, [((x * freq) % 1) for x in xs])
    plt.title(f"sawtooth, frequency {freq}")
    plt.show()
"""),
    code("""
import ipywidgets as widgets

out = widgets.Output(layout={"border": "1px solid #999"})
display(out)
with out:
    print("this line is captured by the Output widget")
"""),
    md("""
A background thread keeps updating this bar after the cell has ended.
"""),
    code("""
import threading
import time

bar = widgets.IntProgress(value=0, max=20, description="background")
display(bar)


def advance():
    for _ in range(20):
        time.sleep(0.05)
        bar.value += 1
    bar.description = "done"


worker = threading.Thread(target=advance)
worker.start()
"""),
    code("""
worker.join()
bar.value, bar.description
"""),
]


def build(stem: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell.id = f"{stem[:2]}-{i:02d}"  # stable ids keep regenerated files diff-free
    nbformat.validate(nb)
    return nb


def main() -> None:
    for stem, cells in NOTEBOOKS.items():
        path = HERE / f"{stem}.ipynb"
        nbformat.write(build(stem, cells), path)
        print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
