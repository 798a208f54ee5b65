"""Widgets across the sandbox, driven as a frontend drives them (jupyter_client, raw
messages): comm messages in the cell's stream and on the kernel channel, in order, with
headers and binary buffers kept (docs/protocol.md §2.2, §2.4)."""

from __future__ import annotations

import threading
import time

import nbformat
import pytest
from jupyter_client.session import Session

from ..support.kernels import KERNEL_NAME, execute
from ..support.notebooks import NotebookClient
from ..support.widgets import (
    THREAD_UPDATE_CELL,
    WIDGET_VIEW,
    expect_thread_update,
    run,
    send_comm,
    wait_iopub,
    widget_id,
)

pytest.importorskip("ipywidgets")


def test_kernel_info_tells_the_truth_and_subshells_are_refused(kc):
    kc.kernel_info()
    info = kc.get_shell_msg(timeout=10)
    while info["msg_type"] != "kernel_info_reply":
        info = kc.get_shell_msg(timeout=10)
    assert info["content"]["supported_features"] == ["debugger"]  # the local sandbox has it
    kc.control_channel.send(kc.session.msg("create_subshell_request", {}))
    reply = kc.get_control_msg(timeout=10)
    assert (reply["msg_type"], reply["content"]["status"]) == ("create_subshell_reply", "error")


def test_slider_model_arrives_before_its_view_and_frontend_update_is_read_back(kc):
    reply, msgs = run(kc, "import ipywidgets as w\ns = w.IntSlider()\ns")
    assert reply["status"] == "ok", reply
    slider = widget_id(msgs, "IntSliderModel")
    opened = next(
        i for i, m in enumerate(msgs) if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == slider
    )
    shown = next(i for i, m in enumerate(msgs) if WIDGET_VIEW in m["content"].get("data", {}))
    assert opened < shown
    assert msgs[shown]["content"]["data"][WIDGET_VIEW]["model_id"] == slider
    # the frontend moves the slider and the next cell, sent right after, reads it
    send_comm(kc, slider, {"method": "update", "state": {"value": 42}, "buffer_paths": []})
    cell = execute(kc, "print(s.value)")
    assert cell.stream("stdout") == "42\n"
    # ipywidgets 8 echoes an update, parented by the frontend's message (headers kept)
    update = send_comm(kc, slider, {"method": "update", "state": {"value": 43}, "buffer_paths": []})
    echo = wait_iopub(
        kc, lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "echo_update"
    )
    assert echo["parent_header"]["msg_id"] == update
    assert echo["content"]["data"]["state"] == {"value": 43}
    # comm_info answered from the sandbox lists it
    kc.comm_info(target_name="jupyter.widget")
    info = kc.get_shell_msg(timeout=10)
    assert slider in info["content"]["comms"]


def test_a_cell_started_during_a_comm_flood_keeps_its_output_and_its_idle(kernel):
    """A second frontend floods comm_msg (~1000 a second) and a cell is started meanwhile:
    the cell's output and its idle arrive under the cell, whole and in order, and the next
    cell runs. (ipykernel 7 handles comms concurrently in one shared context; the cell's
    parent used to become a comm message's, and the cell never went idle for its frontend.)"""
    km, kc = kernel
    reply, msgs = run(kc, "import ipywidgets as w\nflooded = w.IntSlider()\nflooded")
    slider = widget_id(msgs, "IntSliderModel")
    frontend = km.client(session=Session(key=km.session.key, signature_scheme=km.session.signature_scheme))
    frontend.start_channels()
    stop, under_way, sent = threading.Event(), threading.Event(), [0]

    def flood():
        while not stop.is_set():
            for _ in range(10):
                sent[0] += 1
                data = {"method": "update", "state": {"value": sent[0] % 50}, "buffer_paths": []}
                msg = frontend.session.msg("comm_msg", {"comm_id": slider, "data": data})
                frontend.session.send(frontend.shell_channel.socket, msg)
            if sent[0] >= 200:
                under_way.set()
            time.sleep(0.01)  # pacing, ~1000 a second

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        assert under_way.wait(30)  # the flood is under way before the cell is sent
        code = "import time\nfor i in range(2000):\n    print(i)\n    time.sleep(0.001)\n"
        reply, msgs = run(kc, code, 90)
    finally:
        stop.set()
        flooder.join(10)
        frontend.stop_channels()
    assert reply["status"] == "ok", reply
    text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
    assert text == "".join(f"{i}\n" for i in range(2000))
    assert execute(kc, "print('next')", timeout=90).stream("stdout") == "next\n"


def test_image_bytes_round_trip_as_binary_buffers(kc):
    png = bytes(range(256)) * 4
    reply, msgs = run(kc, f"import ipywidgets as w\nimg = w.Image(value={png!r}, format='png')")
    assert reply["status"] == "ok", reply
    image = widget_id(msgs, "ImageModel")
    opened = next(m for m in msgs if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == image)
    assert opened["content"]["data"]["buffer_paths"] == [["value"]]
    assert bytes(opened["buffers"][0]) == png
    new = bytes(reversed(png)) + b"\x00\xff"
    send_comm(kc, image, {"method": "update", "state": {}, "buffer_paths": [["value"]]}, [new])
    cell = execute(kc, f"print(img.value == bytes(reversed({png!r})) + b'\\x00\\xff', len(img.value))")
    assert cell.stream("stdout") == f"True {len(new)}\n"


def test_a_thread_update_arrives_after_its_cell_ended(kc):
    reply, msgs = run(kc, THREAD_UPDATE_CELL)
    assert reply["status"] == "ok", reply
    # the cell is over; the frontend's change wakes the thread, whose update comes back
    expect_thread_update(kc, widget_id(msgs, "IntProgressModel"))


def test_output_widget_captures_print_under_the_frontends_msg_id(kc):
    code = "import ipywidgets as w\nout = w.Output()\ndisplay(out)\nwith out:\n    print('inside')\n"
    msg_id = kc.execute(code)
    msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            msgs.append(msg)
    states = [m["content"]["data"].get("state", {}) for m in msgs if m["msg_type"] == "comm_msg"]
    assert {"msg_id": msg_id} in states  # the sandbox ran the cell under our msg_id
    assert any(m["msg_type"] == "stream" and m["content"]["text"] == "inside\n" for m in msgs)


def test_cells_end_while_the_frontend_syncs_an_output_widget(kc):
    # nbclient (store_widget_state) sends the Output widget's new outputs back as each one
    # arrives, so a comm_msg goes to the sandbox's kernel just as the cell's reply comes
    # back. The server once sent it in a way that left that reply unread (ZeroMQ's wake-up
    # consumed: runtime/kernel_sockets.py) and the cell never ended, 1 in ~100 cells.
    out = execute(kc, "import ipywidgets as w\nout = w.Output()\nout.model_id")
    comm_id = out.of("execute_result")[0]["data"]["text/plain"].strip("'")
    outputs = {"outputs": [{"output_type": "stream", "name": "stdout", "text": "captured\n"}]}
    for _ in range(300):
        synced = []

        def sync(cell, synced=synced):
            if "captured" in cell.stream() and not synced:
                synced.append(
                    send_comm(kc, comm_id, {"method": "update", "state": outputs, "buffer_paths": []})
                )

        cell = execute(kc, "with out:\n    print('captured')", timeout=10, on_output=sync)
        assert cell.status == "ok" and synced


def test_nbclient_store_widget_state_fills_the_notebook_metadata():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import ipywidgets as w\ns = w.IntSlider(value=5)\ns"),
        nbformat.v4.new_code_cell("out = w.Output()\ndisplay(out)\nwith out:\n    print('captured')"),
    ]
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=60, store_widget_state=True).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    sliders = [s for s in state.values() if s["model_name"] == "IntSliderModel"]
    assert sliders and sliders[0]["state"]["value"] == 5
    outputs = [s for s in state.values() if s["model_name"] == "OutputModel"]
    assert outputs[0]["state"]["outputs"][0]["text"] == "captured\n"
