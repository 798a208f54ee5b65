"""The official hopx-ai SDK (sync and async) against the running local server."""

from __future__ import annotations

import httpx
from hopx_ai import AsyncSandbox, Sandbox

from ..support.server_helpers import run


def test_async_sdk_stream_run_files_kill(local_server):
    async def scenario():
        sb = await AsyncSandbox.create(
            template="code-interpreter", api_key=local_server.api_key, base_url=local_server.base_url
        )
        msgs = [
            m
            async for m in sb.run_code_stream(
                "import sys\nprint('out')\nprint('err', file=sys.stderr)\nvalue = 41\nvalue + 1"
            )
        ]
        kinds = [m["type"] for m in msgs]
        assert kinds[-1] == "complete" and kinds[-2] == "result"
        assert "".join(m["data"] for m in msgs if m["type"] == "stdout") == "out\n"
        assert "".join(m["data"] for m in msgs if m["type"] == "stderr") == "err\n"
        assert msgs[-2]["exit_code"] == 0 and msgs[-1]["success"] is True
        result = await sb.run_code(
            "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\nprint(value)"
        )
        assert result.success and result.stdout == "41\n"
        assert any(o.data == {"text/html": "<b>hi</b>"} for o in result.rich_outputs)
        failed = await sb.run_code("1/0")
        assert not failed.success and "ZeroDivisionError" in failed.stderr
        assert "\x1b[" not in failed.stderr
        await sb.files.write("/workspace/notes/a.txt", "héllo\n")
        assert await sb.files.read("/workspace/notes/a.txt") == "héllo\n"
        seen = await sb.run_code("print(open('notes/a.txt').read(), end='')")
        assert seen.stdout == "héllo\n"
        sandbox_id = sb.sandbox_id
        await sb.kill()
        r = httpx.get(
            f"{local_server.base_url}/v1/sandboxes/{sandbox_id}", headers={"X-API-Key": local_server.api_key}
        )
        assert r.status_code == 410 and r.json()["code"] == "SANDBOX_EXPIRED"

    run(scenario())


def test_sync_sdk_and_blocking_rich_keys(local_server):
    sb = Sandbox.create(
        template="code-interpreter", api_key=local_server.api_key, base_url=local_server.base_url
    )
    try:
        result = sb.run_code("x = [1, 2]\nprint(len(x))")
        assert result.success and result.stdout == "2\n"
        again = sb.run_code("x.append(3); print(x)")
        assert again.stdout == "[1, 2, 3]\n"
        token = sb.get_token()
        raw = httpx.post(
            f"{local_server.base_url}/execute",
            json={
                "code": "from IPython.display import Markdown, display\ndisplay(Markdown('# t'))\n{'a': 1}",
                "language": "python",
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        assert raw["success"] is True and raw["markdown"] == "# t"
        assert raw["result"] == "{'a': 1}"
        bash = sb.run_code("echo $((6*7)); echo oops >&2; exit 3", language="bash")
        assert bash.stdout == "42\n" and bash.stderr == "oops\n" and bash.exit_code == 3
        sb.files.write("/workspace/b.txt", "bee")
        assert sb.files.read("/workspace/b.txt") == "bee"
    finally:
        sb.kill()


def test_state_is_per_sandbox(local_server):
    a = Sandbox.create(
        template="code-interpreter", api_key=local_server.api_key, base_url=local_server.base_url
    )
    b = Sandbox.create(template="python", api_key=local_server.api_key, base_url=local_server.base_url)
    try:
        a.run_code("only_in_a = 1")
        assert a.run_code("print(only_in_a)").stdout == "1\n"
        missing = b.run_code("print(only_in_a)")
        assert not missing.success and "NameError" in missing.stderr
        a.run_code("open('marker', 'w').write('a')")
        assert b.run_code("import os; print(os.path.exists('marker'))").stdout == "False\n"
    finally:
        a.kill()
        b.kill()
