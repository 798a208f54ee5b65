"""The kernel channel's bookkeeping of client messages in flight, driven with literals."""

from __future__ import annotations

from hopx_kernel.server.domain.channel_hub import IN_FLIGHT, IN_FLIGHT_TTL, REFUSAL_EVERY, ChannelHub


def msg(msg_type: str, msg_id: str) -> dict:
    return {"header": {"msg_id": msg_id, "msg_type": msg_type}, "parent_header": {}, "content": {}}


def idle(parent_id: str) -> dict:
    return {
        "header": {"msg_id": "s-" + parent_id, "msg_type": "status"},
        "parent_header": {"msg_id": parent_id},
        "content": {"execution_state": "idle"},
    }


def test_comm_messages_beyond_the_bound_are_dropped_until_the_kernel_handles_one():
    hub = ChannelHub()
    assert all(hub.admit(msg("comm_msg", f"m{i}"), now=0.0) for i in range(IN_FLIGHT))
    assert not hub.admit(msg("comm_msg", "over"), now=1.0)
    assert not hub.admit(msg("comm_close", "over2"), now=1.0)
    assert (hub.dropped, hub.dropped_in_burst) == (2, 2)
    # a comm_info_request is never dropped (it counts, though)
    assert hub.admit(msg("comm_info_request", "info"), now=1.0)
    hub.from_kernel("iopub", idle("m0"))
    hub.from_kernel("iopub", idle("info"))
    assert hub.admit(msg("comm_msg", "next"), now=2.0)
    assert hub.dropped_in_burst == 0 and hub.dropped == 2


def test_a_message_never_answered_frees_its_place_after_the_ttl():
    hub = ChannelHub()
    for i in range(IN_FLIGHT):
        hub.admit(msg("comm_msg", f"m{i}"), now=i / 1000)
    assert not hub.admit(msg("comm_msg", "x"), now=IN_FLIGHT_TTL - 0.5)
    assert hub.admit(msg("comm_msg", "y"), now=IN_FLIGHT_TTL + 0.0005)  # m0 (at 0.0) has expired
    assert "m0" not in hub.in_flight and "m1" in hub.in_flight
    assert len(hub.in_flight) == IN_FLIGHT


def test_busy_is_not_carried_idle_is():
    hub = ChannelHub()
    sent = []

    class Conn:
        def queue(self, frame):
            sent.append(frame.msg["content"].get("execution_state"))

    hub.connections.add(Conn())  # type: ignore[arg-type]
    busy = dict(idle("m"), content={"execution_state": "busy"})
    hub.from_kernel("iopub", busy)
    hub.from_kernel("iopub", idle("m"))
    assert sent == ["idle"]


def test_drops_are_told_at_most_once_per_interval():
    hub = ChannelHub()
    assert hub.say_drop(now=100.0)
    assert not hub.say_drop(now=100.0 + REFUSAL_EVERY / 2)
    assert hub.say_drop(now=100.0 + REFUSAL_EVERY)
