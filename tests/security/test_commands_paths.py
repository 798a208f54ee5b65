"""A command's working folder never leaves the sandbox, even through a swapped symlink.

``/commands/run`` and ``/commands/background`` resolve ``workdir`` once through the
race-free layer (:mod:`hopx_kernel.server.runtime.safefs`) and start the child in exactly that
directory; a workdir that is, or passes through, a symlink out of the sandbox is one
clean 403, and nothing outside is touched.
"""

from __future__ import annotations

import httpx
import pytest

from .attack import agent, create, delete, flip_symlink, one_line_4xx, run_py

#: Commands run while sandbox code flips a symlink (fixed: the runtime does not vary).
RACE_ATTEMPTS = 60


@pytest.fixture(scope="module")
def sandbox(target):
    sb = create(target)
    yield sb
    delete(target, sb)


@pytest.fixture
def outside(tmp_path):
    """A folder outside every sandbox, with a sub-folder."""
    (tmp_path / "sub").mkdir()
    return tmp_path


def _touched(outside) -> list[str]:
    return sorted(p.name for p in outside.rglob("*") if p.name != "sub")


@pytest.mark.parametrize("endpoint", ["/commands/run", "/commands/background"])
def test_a_symlinked_workdir_out_of_the_sandbox_is_refused(target, sandbox, outside, endpoint):
    run_py(
        target,
        sandbox,
        f"import os\nos.path.lexists('escape') and os.remove('escape')\nos.symlink({str(outside)!r}, 'escape')",
    )
    for workdir in ("escape", "/workspace/escape", "escape/sub", "/workspace/escape/sub"):
        r = agent(
            target,
            sandbox,
            "POST",
            endpoint,
            json={"command": "bash", "args": ["-c", "touch pwned"], "workdir": workdir},
        )
        one_line_4xx(r)
        assert r.status_code == 403 and r.json()["code"] == "PATH_NOT_ALLOWED", (workdir, r.text)
    listed = agent(target, sandbox, "GET", "/execute/processes").json()["processes"]
    assert not [p for p in listed if "pwned" in str(p)]
    assert _touched(outside) == []


def test_relative_and_absolute_workdirs_still_work(target, sandbox):
    run_py(target, sandbox, "import os\nos.makedirs('wd/inner', exist_ok=True)")
    for workdir, expected in (
        ("wd/inner", "/inner"),
        ("/workspace/wd/inner", "/inner"),
        ("/workspace", None),
        ("/tmp", None),
    ):
        r = agent(
            target,
            sandbox,
            "POST",
            "/commands/run",
            json={"command": "bash", "args": ["-c", "pwd -P; touch here"], "workdir": workdir},
        )
        body = r.json()
        assert r.status_code == 200 and body["exit_code"] == 0, (workdir, r.text)
        if expected:
            assert body["stdout"].strip().endswith("wd" + expected), body["stdout"]
    listing = agent(target, sandbox, "GET", "/files/list", params={"path": "wd/inner"}).json()
    assert "here" in str(listing)
    r = agent(
        target,
        sandbox,
        "POST",
        "/commands/background",
        json={"command": "bash", "args": ["-c", "touch bg-here"], "workdir": "wd"},
    )
    assert r.status_code == 200, r.text
    r = agent(target, sandbox, "POST", "/commands/run", json={"command": "missing", "workdir": "nowhere"})
    assert r.status_code == 404 and r.json()["code"] == "DIRECTORY_NOT_FOUND", r.text


def test_a_workdir_swapped_for_a_symlink_never_escapes(target, sandbox, outside):
    """Sandbox code flips ``link`` between a folder inside and one outside while commands
    start in ``link``: each runs inside or is refused; none writes outside."""
    flip_symlink(target, sandbox, outside)
    ran = refused = 0
    try:
        with httpx.Client(
            base_url=target.base_url,
            timeout=30,
            headers={"Authorization": f"Bearer {sandbox['auth_token']}"},
        ) as c:
            for i in range(RACE_ATTEMPTS):
                r = c.post(
                    "/commands/run",
                    json={"command": "bash", "args": ["-c", f"pwd -P; touch pwned-{i}"], "workdir": "link"},
                )
                assert r.status_code in (200, 403), r.text
                # confinement may stop the write anyway: the folder it started in tells
                assert r.status_code == 403 or not r.json()["stdout"].startswith(str(outside)), r.text
                ran, refused = ran + (r.status_code == 200), refused + (r.status_code == 403)
    finally:
        run_py(target, sandbox, "open('stop', 'w').close()")
    assert _touched(outside) == [], f"{ran} ran, {refused} refused"
    assert ran + refused == RACE_ATTEMPTS
