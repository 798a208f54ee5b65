"""Pure helpers of the differential test (test_parity.py): the parity notebook, how a
recorded message is normalised, and what JupyterLab renders from a run of stream messages.

Kept apart from the test so each piece can be checked with literals (test_parity_pure.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

HERE = Path(__file__).resolve().parent
#: pip's real install-progress bytes (rich, through IPython's pty), as a local kernel sent them
PIP_PROGRESS = json.loads((HERE / "pip_progress.json").read_text(encoding="utf-8"))["chunks"]

#: The parity notebook: one cell per point of issue 13, each run on both kernels.
PARITY_CELLS = [
    "x = 1",
    "%hopx",  # a local magic on the HopX kernel: the sandbox never sees it
    "42",
    "sorted(Out), Out.get(4), _, _4, In[4]",
    "1/0",
    "def fail(n):\n    return n / 0\n\nfail(2)",
    "import matplotlib.pyplot as plt\n\nplt.plot([1, 2, 4])",
    "import sys, time\n\nfor chunk in PIP_PROGRESS:\n    sys.stdout.write(chunk)\n"
    "    sys.stdout.flush()\n    time.sleep(0.01)\nprint('Note: you may need to restart the kernel')",
    "for i in range(3):\n    print(f'\\r{i}/3 ' + '#' * (3 - i), end='', flush=True)\n    time.sleep(0.05)\nprint()",
    "from IPython.display import Markdown, clear_output, display\n\n"
    "h = display(Markdown('first'), display_id=True)\nh.update(Markdown('second'))",
    "print('out'); print('err', file=sys.stderr); print('out again')",
    "for i in range(3):\n    clear_output(wait=True)\n    print(f'frame {i}')",
    "print('before'); display(Markdown('**shown**')); 'value'",
    "%%bash\necho from bash; echo to stderr >&2",
    "import os\ndef greet(n):\n    'Say hello n times.'\n    return 'hi ' * n",
]

#: Why a cell's stdout and stderr may interleave differently (kind "stream-order": each
#: run of stream messages is compared per stream, everything else exactly)
STREAM_ORDER = (
    "unflushed, a local ipykernel sends stdout and stderr as separate 200 ms batches, "
    "stdout's first; the sandbox keeps the order they were written in, on purpose "
    "(hopx_kernel/server/runtime/kernel_launcher.py)"
)
#: Cells whose outputs cannot be the same: source → (kind, reason). Kind "skip": outputs not
#: compared (the execution count still is).
PARITY_EXCEPTIONS = {
    "%hopx": (
        "skip",
        "only the HopX kernel has %hopx (it describes the sandbox); a local kernel answers UsageError",
    ),
    "print('out'); print('err', file=sys.stderr); print('out again')": ("stream-order", STREAM_ORDER),
}

#: Completion and inspection requests compared through jupyter_client after the notebook ran.
ASSIST_REQUESTS = [
    ("complete", "gre", 3),
    ("complete", "os.pa", 5),
    ("complete", "import o", 8),
    ("complete", "Markdo", 6),
    ("inspect", "greet", 5),
    ("inspect", "len", 2),
]


def parity_notebook():
    """The parity notebook; its first cell defines ``PIP_PROGRESS`` silently for the replay."""
    cells = [new_code_cell(f"PIP_PROGRESS = {PIP_PROGRESS!r}")] + [new_code_cell(c) for c in PARITY_CELLS]
    return new_notebook(cells=cells)


# ------------------------------------------------------------------ normalising

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,16}")
_IPY_FILE = re.compile(r"[^\s\x1b\"']*/ipykernel_\d+/\d+\.py")
_SECONDS = re.compile(r"\b\d+\.\d+s\b")
#: tqdm's rate and clock ("3059.35it/s", "[00:00<00:01")
_RATE = re.compile(r"\d+(?:\.\d+)?(?:it/s|s/it)")
_CLOCK = re.compile(r"\b\d{2}:\d{2}\b")
_UUID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
#: a Jupyter session's message id (jupyter_client: 8 hex, '-', 24 hex, '_', pid, '_', n)
_MSG_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{24}_\d+_\d+\b")
#: a local sandbox's folder on the host (the cell's working directory there)
_SANDBOX_DIR = re.compile(r"/[^\s\"']*/hopx-local-[^/\s]+/local-[0-9a-f]+")


def normalise_text(text: str) -> str:
    """Memory addresses, IPython's per-process cell file names, timings and ids made equal."""
    text = _ADDRESS.sub("0xADDR", text)
    text = _IPY_FILE.sub("TMP/ipykernel_PID/CELL.py", text)
    text = _SECONDS.sub("N.Ns", text)
    text = _CLOCK.sub("MM:SS", _RATE.sub("N it/s", text))
    text = _SANDBOX_DIR.sub("CWD", text)
    text = _MSG_ID.sub("MSGID", text)
    return _UUID.sub("ID", text)


def _normalise(value):
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


#: iopub messages that are the kernel's bookkeeping, not the cell's output
SKIPPED = {"status", "execute_input"}


def normalise(messages: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """A cell's iopub messages as compared: bookkeeping dropped, runs of one stream joined
    (where a chunk ends is timing: ipykernel flushes every 200 ms, a sandbox sooner), the
    rest normalised field by field."""
    out: list[tuple[str, dict]] = []
    for msg_type, content in messages:
        if msg_type in SKIPPED:
            continue
        if msg_type == "stream" and out and out[-1][0] == "stream" and out[-1][1]["name"] == content["name"]:
            out[-1] = ("stream", {"name": content["name"], "text": out[-1][1]["text"] + content["text"]})
            continue
        if (
            _is_update(msg_type, content)
            and out
            and _is_update(*out[-1])
            and (out[-1][1].get("comm_id") == content.get("comm_id"))
        ):
            # how many intermediate states a widget sends is timing (tqdm redraws every
            # 0.1 s): consecutive updates of one widget compare as their merged state
            merged = {**out[-1][1]["data"]["state"], **content["data"]["state"]}
            out[-1] = (msg_type, {**content, "data": {**content["data"], "state": merged}})
            continue
        out.append((msg_type, dict(content)))
    return [(t, _normalise(c)) for t, c in out]


def streams_per_run(messages: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Normalised messages with each run of consecutive stream messages reduced to one
    message per stream name (stdout first): equal when only the interleaving differs."""
    out: list[tuple[str, dict]] = []
    run: dict[str, str] = {}

    def end_run():
        for name in sorted(run, key=lambda n: n != "stdout"):
            out.append(("stream", {"name": name, "text": run[name]}))
        run.clear()

    for msg_type, content in normalise(messages):
        if msg_type == "stream":
            run[content["name"]] = run.get(content["name"], "") + content["text"]
        else:
            end_run()
            out.append((msg_type, content))
    end_run()
    return out


def _is_update(msg_type: str, content: dict) -> bool:
    data = content.get("data")
    return (
        msg_type == "comm_msg"
        and isinstance(data, dict)
        and data.get("method") == "update"
        and isinstance(data.get("state"), dict)
        and not data.get("buffer_paths")
    )


# ------------------------------------------------------------------ what JupyterLab renders

_CONTROL = re.compile(r"[\n\b\r]")


def process_text(index: int, text: str, current: str = "") -> tuple[str, int]:
    """JupyterLab 4's ``processText`` (``@jupyterlab/outputarea`` model): how a stream
    chunk changes an output's text, with the insertion point carried between chunks.

    ``\\r`` moves the insertion point to the line's start and later text *overwrites*
    (nothing is erased); ``\\n`` appends a newline at the end; ``\\b`` deletes one
    character. ANSI sequences are ordinary characters here (the renderer strips them).

    Example:
        >>> process_text(0, "abcdef\\rxy")
        ('xycdef', 2)
    """
    if not any(c in text for c in "\b\r\n"):
        return current[:index] + text + current[index + len(text) :], index + len(text)
    pos, start = index, 0
    while True:
        match = _CONTROL.search(text, start)
        stop = match.start() if match else len(text)
        piece = text[start:stop]
        current = current[:pos] + piece + current[pos + len(piece) :]
        pos += len(piece)
        if match is None:
            return current, pos
        start = stop + 1
        char = text[stop]
        if char == "\b":
            if pos > 0 and current[pos - 1] != "\n":
                current = current[: pos - 1] + current[pos + 1 :]
                pos -= 1
        elif char == "\r":
            while pos > 0 and current[pos - 1] != "\n":
                pos -= 1
        else:
            current += "\n"
            pos = len(current)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def rendered_streams(messages: list[tuple[str, dict]]) -> list[str]:
    """The visible text of each stream output JupyterLab shows for these messages."""
    outputs: list[list] = []
    last_name, index = None, 0
    for msg_type, content in messages:
        if msg_type == "stream":
            if outputs and last_name == content["name"]:
                outputs[-1][0], index = process_text(index, content["text"], outputs[-1][0])
            else:
                text, index = process_text(0, content["text"])
                outputs.append([text])
                last_name = content["name"]
        elif msg_type not in SKIPPED:
            last_name = None
    return [_ANSI.sub("", text) for (text,) in outputs]
