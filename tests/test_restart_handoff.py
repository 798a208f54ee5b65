"""The kernel's side of a restart's handoff (hopx_kernel/restart_handoff.py): a note that
is missing, unreadable or names a server that is gone means "start a server of your own"."""

from __future__ import annotations

import json
import subprocess
import sys

from hopx_kernel.restart_handoff import handoff_path, take


def test_no_note_no_server(tmp_path):
    assert take(handoff_path(str(tmp_path / "kernel-1.json"))) is None


def test_a_garbled_note_is_removed_and_ignored(tmp_path):
    note = handoff_path(str(tmp_path / "kernel-1.json"))
    note.write_text("{not json")
    assert take(note) is None
    assert not note.exists()


def test_a_note_about_a_server_that_is_gone_is_ignored(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    note = handoff_path(str(tmp_path / "kernel-1.json"))
    note.write_text(json.dumps({"pid": gone.pid, "base_url": "http://127.0.0.1:9", "api_key": "k"}))
    assert take(note) is None
    assert not note.exists()


def test_a_note_pointing_off_this_machine_gets_no_key(tmp_path):
    # the key is only ever sent to loopback: a note naming another host is refused unsent
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        note = handoff_path(str(tmp_path / "kernel-1.json"))
        note.write_text(json.dumps({"pid": live.pid, "base_url": "http://192.0.2.1:80", "api_key": "k"}))
        assert take(note) is None
    finally:
        live.kill()
        live.wait()
