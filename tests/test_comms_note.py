"""The once-only note when a widget view is shown and the sandbox has no kernel channel
(hopx_kernel/comms.py ``CommBridge.note_display``).

No real agent produces this case: a plain agent never sends the view at all (see
tests/kernel/test_agent_modes.py), so the sandbox here is a stand-in with only the one
attribute the bridge reads.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hopx_kernel.comms import NO_CHANNEL_NOTE, CommBridge
from hopx_kernel.wire import WIDGET_VIEW_MIME

VIEW = {WIDGET_VIEW_MIME: {"model_id": "m1", "version_major": 2}, "text/plain": "IntSlider(value=3)"}


def _bridge(has_channel: bool) -> tuple[CommBridge, list]:
    published: list = []
    sandbox = SimpleNamespace(has_channel=has_channel)
    bridge = CommBridge(sandbox, lambda msg, buffers: None, lambda t, c: published.append((t, c)))  # type: ignore[arg-type]
    return bridge, published


def test_the_first_widget_without_a_channel_prints_one_line_once():
    bridge, published = _bridge(has_channel=False)
    bridge.note_display({"text/plain": "1"})  # not a widget: nothing
    assert published == []
    bridge.note_display(VIEW)
    bridge.note_display(VIEW)
    assert published == [("stream", {"name": "stderr", "text": NO_CHANNEL_NOTE})]
    assert NO_CHANNEL_NOTE.count("\n") == 1 and "kernel channel" in NO_CHANNEL_NOTE


@pytest.mark.parametrize("data", [VIEW, {"text/plain": "1"}])
def test_with_a_channel_nothing_is_printed(data):
    bridge, published = _bridge(has_channel=True)
    bridge.note_display(data)
    assert published == []
