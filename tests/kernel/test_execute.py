"""Cells through jupyter_client on the embedded sandbox: every row of docs/protocol.md §3 that a
frontend sees, streaming, ordering, big output, state, rich output and errors."""

from __future__ import annotations

import base64
import hashlib

from ..support.kernels import execute


def test_stdout_streams_and_reply_ok(kc):
    cell = execute(kc, "print('hello, sandbox')")
    assert cell.status == "ok"
    assert cell.stream("stdout") == "hello, sandbox\n"


def test_output_arrives_while_the_cell_still_runs(kc, tmp_path):
    # the cell waits after its first line until the test has that line: a kernel that held
    # output back until the end would never finish the cell (a timeout), however slow the
    # machine, and a fast one passes without a wall-clock bound
    release = tmp_path / "release"
    code = (
        "import os, time\nprint('first')\n"
        f"while not os.path.exists({str(release)!r}):\n    time.sleep(0.01)\nprint('second')"
    )

    def on_output(cell):
        if "first" in cell.stream("stdout"):
            release.touch()

    cell = execute(kc, code, timeout=60, on_output=on_output)
    assert cell.status == "ok"
    assert cell.stream("stdout") == "first\nsecond\n"


def test_stdout_and_stderr_keep_their_order(kc):
    code = (
        "import sys\n"
        "print('a')\nprint('b', file=sys.stderr)\nprint('c')\n"
        "sys.stderr.write('d\\n')\nsys.stdout.write('e\\n')"
    )
    cell = execute(kc, code)
    runs: list[list[str]] = []
    for kind, content in cell.outputs:
        if kind == "stream":
            if runs and runs[-1][0] == content["name"]:
                runs[-1][1] += content["text"]
            else:
                runs.append([content["name"], content["text"]])
    assert runs == [
        ["stdout", "a\n"],
        ["stderr", "b\n"],
        ["stdout", "c\n"],
        ["stderr", "d\n"],
        ["stdout", "e\n"],
    ]


def test_carriage_returns_reach_the_frontend_untouched(kc):
    cell = execute(kc, "import sys\nfor i in range(3):\n    sys.stdout.write(f'\\r{i}/3')\nprint()")
    assert cell.stream("stdout") == "\r0/3\r1/3\r2/3\n"


def test_multi_megabyte_unicode_output_is_byte_exact(kc):
    # 3 MB mixing ASCII, accents, CJK, emoji (astral plane), control characters and \r
    code = (
        "import sys\n"
        "piece = 'ascii é ü 漢字 🎉 \\x01 \\t \\r\\n' * 7\n"
        "data = ''.join(f'{i:06d} {piece}' for i in range(20000))\n"
        "sys.stdout.write(data)\n"
    )
    piece = "ascii é ü 漢字 🎉 \x01 \t \r\n" * 7
    expected = "".join(f"{i:06d} {piece}" for i in range(20000))
    cell = execute(kc, code, timeout=120)
    got = cell.stream("stdout")
    assert len(got) == len(expected)
    assert hashlib.sha256(got.encode()).hexdigest() == hashlib.sha256(expected.encode()).hexdigest()
    assert len(cell.of("stream")) > 1  # it was streamed in pieces, not held as one message


def test_state_persists_across_cells(kc):
    assert execute(kc, "counter = 41").status == "ok"
    cell = execute(kc, "counter += 1\nprint(counter)")
    assert cell.stream() == "42\n"


def test_execute_result_carries_the_kernels_execution_count(kc):
    cell = execute(kc, "6 * 7")
    results = cell.of("execute_result")
    assert len(results) == 1
    assert results[0]["data"]["text/plain"] == "42"
    assert results[0]["execution_count"] == cell.reply["execution_count"]
    after = execute(kc, "'next'")
    assert after.reply["execution_count"] == cell.reply["execution_count"] + 1
    assert after.of("execute_result")[0]["execution_count"] == after.reply["execution_count"]


def test_html_display_data(kc):
    cell = execute(kc, "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))")
    (shown,) = cell.of("display_data")
    assert shown["data"]["text/html"] == "<b>bold</b>"


def test_png_display_data(kc):
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/3kQjgAAAAABJRU5ErkJggg=="
    )
    code = f"from IPython.display import Image, display\ndisplay(Image(data={png!r}))"
    cell = execute(kc, code)
    (shown,) = cell.of("display_data")
    assert base64.b64decode(shown["data"]["image/png"]) == png


def test_update_display_data_and_clear_output(kc):
    code = (
        "from IPython.display import display, clear_output\n"
        "h = display('one', display_id=True)\n"
        "h.update('two')\n"
        "print('gone')\n"
        "clear_output(wait=True)\n"
        "print('kept')"
    )
    cell = execute(kc, code)
    kinds = [k for k, _ in cell.outputs]
    assert kinds.index("display_data") < kinds.index("update_display_data") < kinds.index("clear_output")
    (update,) = cell.of("update_display_data")
    assert update["data"]["text/plain"] == "'two'"
    assert update["transient"]["display_id"] == cell.of("display_data")[0]["transient"]["display_id"]
    assert cell.of("clear_output") == [{"wait": True}]


def test_structured_error_then_the_next_cell_still_works(kc):
    cell = execute(kc, "def f():\n    return 1 / 0\nf()")
    assert cell.status == "error"
    assert cell.reply["ename"] == "ZeroDivisionError"
    assert cell.reply["evalue"] == "division by zero"
    (error,) = cell.of("error")
    assert error["ename"] == "ZeroDivisionError"
    assert any("f()" in line for line in error["traceback"])
    assert "ZeroDivisionError" not in cell.stream("stderr")  # not duplicated on stderr
    assert execute(kc, "print('still here')").stream() == "still here\n"


def test_input_without_stdin_fails_fast_with_a_clear_error(kc):
    cell = execute(kc, "input('name? ')", allow_stdin=False, timeout=30)
    assert cell.status == "error"
    assert cell.reply["ename"] == "StdinNotImplementedError"


def test_input_round_trip_through_the_stdin_channel(kc):
    prompts = []

    def answer(content):
        prompts.append(content)
        return "Ada"

    cell = execute(kc, "name = input('name? ')\nprint('hi', name)", allow_stdin=True, stdin_answer=answer)
    assert cell.status == "ok", cell.reply
    assert prompts == [{"prompt": "name? ", "password": False}]
    assert cell.stream("stdout").endswith("hi Ada\n")


def test_getpass_is_a_password_request(kc):
    seen = []
    cell = execute(
        kc,
        "import getpass\nsecret = getpass.getpass('pw: ')\nprint(len(secret))",
        allow_stdin=True,
        stdin_answer=lambda c: seen.append(c) or "hunter2",
    )
    assert cell.status == "ok", cell.reply
    assert seen[0]["password"] is True
    assert cell.stream("stdout").strip().endswith("7")


def test_bash_cell_magic_runs_in_the_sandbox(kc):
    cell = execute(kc, "%%bash\necho from-bash\necho oops >&2\nexit 3")
    assert "from-bash\n" in cell.stream("stdout")
    assert "oops\n" in cell.stream("stderr")
    assert cell.status == "error"


def test_silent_cells_publish_nothing(kc):
    msg_id = kc.execute("print('quiet')", silent=True)
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "ok"
    assert execute(kc, "print('loud')").stream() == "loud\n"


def test_output_of_a_forked_child_process_reaches_the_cell(kc):
    code = (
        "import multiprocessing as mp\n"
        "def work(n):\n    print(f'child {n}', flush=True)\n"
        "ctx = mp.get_context('fork')\n"
        "for i in range(2):  # one after the other: concurrent children interleave their writes\n"
        "    p = ctx.Process(target=work, args=(i,)); p.start(); p.join()\n"
        "print('parent done')"
    )
    cell = execute(kc, code)
    out = cell.stream("stdout")
    assert "child 0\n" in out and "child 1\n" in out and out.endswith("parent done\n")


def test_a_joined_forked_childs_output_comes_before_the_parents_next_write(kc):
    # 100 times in one cell: before each child wrote into a pipe of its own, about 4 cells
    # in 100 got 'child 1parent done\n\n' (the child's last write arrived late)
    code = (
        "import multiprocessing as mp, sys\n"
        "def work(n):\n    print(f'child {n}', flush=True); print(f'err {n}', file=sys.stderr)\n"
        "ctx = mp.get_context('fork')\n"
        "for i in range(100):\n"
        "    p = ctx.Process(target=work, args=(i,)); p.start(); p.join()\n"
        "    print(f'parent {i}')\n"
    )
    cell = execute(kc, code, timeout=120)
    assert cell.stream("stdout") == "".join(f"child {i}\nparent {i}\n" for i in range(100))
    assert cell.stream("stderr") == "".join(f"err {i}\n" for i in range(100))


def test_output_from_a_thread_lands_in_the_cell_that_started_it(kc):
    code = (
        "import threading\n"
        "t = threading.Thread(target=lambda: print('from thread'))\n"
        "t.start(); t.join()\n"
        "print('main')"
    )
    cell = execute(kc, code)
    assert cell.stream("stdout") == "from thread\nmain\n"
