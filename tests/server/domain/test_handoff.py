"""A restart's offer and adoption of the embedded server (server/domain/handoff.py)."""

from __future__ import annotations

import pytest

from hopx_kernel import restart_handoff
from hopx_kernel.server.domain.handoff import NOTE_SUFFIX, Handoff
from hopx_kernel.server.server_errors import ServerError


def test_without_an_offer_the_server_lives_exactly_as_long_as_its_parent():
    h = Handoff(parent_pid=100, grace=30)
    assert h.keep_running(parent_alive=True, now=0.0)
    assert not h.keep_running(parent_alive=False, now=0.0)


def test_an_offer_outlives_the_parent_for_the_grace_only():
    h = Handoff(parent_pid=100, grace=30)
    h.offer(now=10.0)
    assert h.keep_running(parent_alive=False, now=40.0)
    assert not h.keep_running(parent_alive=False, now=40.5)


def test_the_adopter_becomes_the_parent_and_the_offer_is_spent():
    h = Handoff(parent_pid=100, grace=30)
    h.offer(now=0.0, note="/run/k.json.hopx-server.json")
    h.adopt(200, now=1.0)
    assert h.parent_pid == 200 and h.unclaimed_note() is None
    assert not h.keep_running(parent_alive=False, now=2.0)  # the new parent's end ends it
    with pytest.raises(ServerError) as again:
        h.adopt(300, now=2.0)
    assert again.value.status == 409


@pytest.mark.parametrize("when", [None, 31.0])
def test_no_adoption_without_a_standing_offer(when):
    h = Handoff(parent_pid=100, grace=30)
    if when is not None:
        h.offer(now=0.0)
    with pytest.raises(ServerError) as refused:
        h.adopt(200, now=when or 0.0)
    assert refused.value.status == 409 and h.parent_pid == 100


@pytest.mark.parametrize("pid", [1, 0, -5, True, "200", None])
def test_adoption_needs_a_process_id(pid):
    h = Handoff(parent_pid=100)
    h.offer(now=0.0)
    with pytest.raises(ServerError) as refused:
        h.adopt(pid, now=0.0)
    assert refused.value.status == 400 and h.parent_pid == 100


def test_only_a_note_file_is_remembered_for_removal():
    h = Handoff(parent_pid=100)
    h.offer(now=0.0, note="/home/user/.ssh/id_rsa")
    assert h.unclaimed_note() is None
    h.offer(now=0.0, note="/run/k.json" + NOTE_SUFFIX)
    assert str(h.unclaimed_note()) == "/run/k.json.hopx-server.json"
    assert NOTE_SUFFIX == restart_handoff.SUFFIX  # the kernel names the file so
