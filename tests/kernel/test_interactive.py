"""Interactive parity with a local kernel: the jupyter_kernel_test suite, completion and
inspection from the sandbox's live namespace, is_complete, history and the %hopx magics."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import unittest

import jupyter_kernel_test

from ..support.kernels import KERNEL_NAME, execute


class HopxKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import zipi", "matches": {"zipimport"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2", "for i in range(3):"]
    invalid_code_samples = ["import = 7q", "x = )"]
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(4)]", "result": "[0, 1, 4, 9]"},
    ]
    code_display_data = [
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))",
            "mime": "text/latex",
        },
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_page_something = "zip?"
    code_clear_output = "from IPython.display import clear_output; clear_output()"


def test_completion_knows_names_defined_in_the_sandbox(kc):
    execute(kc, "sandbox_only_variable_xyz = 1\nclass Widget:\n    def spin_fast(self): pass\nw = Widget()")
    reply = kc.complete("sandbox_only_v", reply=True, timeout=10)["content"]
    assert reply["status"] == "ok"
    assert "sandbox_only_variable_xyz" in reply["matches"]
    code = "w.spin"
    reply = kc.complete(code, len(code), reply=True, timeout=10)["content"]
    start, end = reply["cursor_start"], reply["cursor_end"]
    applied = {code[:start] + match + code[end:] for match in reply["matches"]}
    assert "w.spin_fast" in applied


def test_inspect_shows_the_signature_of_a_sandbox_function(kc):
    execute(kc, "def scale(value, factor=2):\n    'Multiply value by factor.'\n    return value * factor")
    reply = kc.inspect("scale(", 6, reply=True, timeout=10)["content"]
    assert reply["found"] is True
    text = re.sub(r"\x1b\[[0-9;]*m", "", reply["data"]["text/plain"])
    assert "factor=2" in text and "Multiply value by factor." in text


def test_is_complete_for_consoles(kc):
    def ask(code):
        msg_id = kc.is_complete(code)
        reply = kc.get_shell_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg_id
        return reply["content"]

    assert ask("x = 1")["status"] == "complete"
    assert ask("x = )")["status"] == "invalid"
    reply = ask("if x:")
    assert reply["status"] == "incomplete" and reply["indent"] == "    "


def test_hopx_magic_says_where_the_code_runs(kc):
    cell = execute(kc, "%hopx")
    text = cell.stream()
    assert cell.status == "ok"
    for label in ("mode", "sandbox id", "agent version", "template", "uptime"):
        assert label in text
    assert "embedded" in text


def test_hopx_upload_and_download_round_trip(kc, tmp_path):
    payload = bytes(range(256)) * 40
    src = tmp_path / "data.bin"
    src.write_bytes(payload)
    cell = execute(kc, f"%hopx upload {src} inbox/data.bin")
    assert cell.status == "ok", cell.reply
    check = execute(
        kc, "import hashlib\nprint(hashlib.sha256(open('inbox/data.bin', 'rb').read()).hexdigest())"
    )
    assert check.stream().strip() == hashlib.sha256(payload).hexdigest()
    back = tmp_path / "back.bin"
    cell = execute(kc, f"%hopx download inbox/data.bin {back}")
    assert cell.status == "ok", cell.reply
    assert back.read_bytes() == payload


def test_uploaded_file_is_visible_to_sandbox_code(kc, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("from the laptop\n")
    assert execute(kc, f"%hopx upload {src}").status == "ok"
    cell = execute(kc, "print(open('hello.txt').read(), end='')")
    assert cell.stream() == "from the laptop\n"


def test_hopx_magic_misuse_is_a_usage_error(kc):
    cell = execute(kc, "%hopx frobnicate")
    assert cell.status == "error"
    assert cell.reply["ename"] == "UsageError"
    assert "usage: %hopx" in cell.reply["evalue"]


def test_vscode_finds_the_kernel_through_kernelspec_list():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    spec = json.loads(out)["kernelspecs"][KERNEL_NAME]["spec"]
    assert spec["display_name"] == "HopX Remote Python"
    assert spec["language"] == "python"
    # "python", as ipykernel's python3: Jupyter (and VS Code) run it with the interpreter
    # of the environment the spec was found in
    assert spec["argv"] == ["python", "-m", "hopx_kernel", "-f", "{connection_file}"]


if __name__ == "__main__":
    unittest.main()
