"""The pure helpers of the differential test (tests/kernel/parity.py), with literals.

They also pin down the cause of pip's ``9/9 [matplotlib]9 [matplotlib]`` in JupyterLab
(issue 13): JupyterLab applies ``\\r`` by *overwriting* from the line's start and keeps its
insertion point across stream messages, so where a kernel cuts its messages does not
change what is shown; it does not act on ``ESC[2K`` (erase line), and rich's finished
bar is shorter, in characters, than the unfinished one before it (one colour run instead
of two), so the previous frame's tail stays on screen. Same bytes, same text, on any kernel.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from tests.kernel.parity import (
    PIP_PROGRESS,
    normalise,
    normalise_text,
    process_text,
    rendered_streams,
    streams_per_run,
)


def stream(text, name="stdout"):
    return ("stream", {"name": name, "text": text})


def test_carriage_return_overwrites_without_erasing():
    assert process_text(0, "abcdef\rxy") == ("xycdef", 2)
    assert rendered_streams([stream("long line\rshort\n")]) == ["shortline\n"]


def test_pip_progress_leaves_the_previous_frames_tail_on_any_kernel():
    [text] = rendered_streams([stream(chunk) for chunk in PIP_PROGRESS])
    assert "9/9 [matplotlib]9 [matplotlib]" in text  # exactly what the issue saw


@given(st.lists(st.integers(min_value=0, max_value=len("".join(PIP_PROGRESS))), max_size=30))
def test_where_the_messages_are_cut_does_not_change_what_jupyterlab_shows(cuts):
    data = "".join(PIP_PROGRESS)
    bounds = sorted({0, len(data), *cuts})
    pieces = [data[a:b] for a, b in pairwise(bounds)]
    assert rendered_streams([stream(p) for p in pieces]) == rendered_streams([stream(data)])


def test_stderr_in_between_starts_a_new_output():
    assert rendered_streams([stream("a\r"), stream("e", "stderr"), stream("b")]) == ["a", "e", "b"]


def test_normalise_joins_stream_runs_and_masks_addresses_paths_and_timings():
    messages = [
        ("status", {"execution_state": "busy"}),
        stream("<Line2D at 0x7f283701e810> "),
        stream('File "/tmp/run-x/ipykernel_7021/2755014256.py" took 0.52s'),
        ("execute_result", {"data": {"text/plain": "/tmp/r/hopx-local-ab12/local-89ca398b206a/x"}}),
    ]
    assert normalise(messages) == [
        stream('<Line2D at 0xADDR> File "TMP/ipykernel_PID/CELL.py" took N.Ns'),
        ("execute_result", {"data": {"text/plain": "CWD/x"}}),
    ]
    assert normalise_text("display 3f2a9c0e4b1d4e7f8a6b5c4d3e2f1a0b") == "display ID"
    assert normalise_text("IPY_MODEL_e50e03ea676143e7b576456f15a57234") == "IPY_MODEL_ID"
    assert normalise_text("22c1f17a-d0248a48c8d0355e08daa3b8_20827_4") == "MSGID"


def test_streams_per_run_forgets_only_the_interleaving():
    written = [stream("out\n"), stream("err\n", "stderr"), stream("again\n"), ("display_data", {})]
    batched = [stream("out\nagain\n"), stream("err\n", "stderr"), ("display_data", {})]
    assert streams_per_run(written) == streams_per_run(batched)
    assert normalise(written) != normalise(batched)


def test_consecutive_widget_updates_compare_as_their_merged_state():
    def update(state, comm="c1"):
        return (
            "comm_msg",
            {"comm_id": comm, "data": {"method": "update", "state": state, "buffer_paths": []}},
        )

    fast = [update({"value": 1}), update({"value": 2, "bar_style": "success"})]
    slow = [
        update({"value": 1}),
        update({"value": 1.5}),
        update({"value": 2}),
        update({"bar_style": "success"}),
    ]
    assert normalise(fast) == normalise(slow)
    assert normalise([update({"value": 1}), update({"value": 2}, "c2")]) != normalise(
        [update({"value": 2}, "c2")]
    )
    assert normalise_text("100/100 [00:00<00:01, 3059.35it/s]") == "100/100 [MM:SS<MM:SS, N it/s]"
