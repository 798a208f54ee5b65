"""Kernel-handled magics: parsing, remote paths, %hopx output."""

from __future__ import annotations

import pytest

from hopx_kernel.magics import Magic, MagicError, format_info, parse_magic, remote_path


@pytest.mark.parametrize(
    "head, language",
    [
        ("%%bash", "bash"),
        ("%%sh", "bash"),
        ("%%javascript", "javascript"),
        ("%%js", "javascript"),
        ("%%node", "javascript"),
    ],
)
def test_cell_language_magics(head, language):
    magic = parse_magic(f"{head}\necho one\necho two\n")
    assert magic == Magic(name=head[2:], body="echo one\necho two\n", language=language)
    assert not magic.local


def test_cell_magic_after_blank_lines_and_with_arguments():
    assert parse_magic("\n\n%%bash --no-raise-error\nls").body == "ls"
    assert parse_magic("%%bash").body == ""


def test_hopx_info():
    assert parse_magic("%hopx") == Magic(name="hopx", args=(), local=True)
    assert parse_magic("  %hopx  \n\n") == Magic(name="hopx", args=(), local=True)
    assert parse_magic("%hopx info").args == ("info",)


@pytest.mark.parametrize(
    "code, args",
    [
        ("%hopx upload data.csv", ("upload", "data.csv")),
        ("%hopx upload ~/d.csv /workspace/in/d.csv", ("upload", "~/d.csv", "/workspace/in/d.csv")),
        ("%hopx upload 'my file.csv' remote.csv", ("upload", "my file.csv", "remote.csv")),
        ("%hopx download out.png", ("download", "out.png")),
        ("%hopx download /workspace/out.png local.png", ("download", "/workspace/out.png", "local.png")),
    ],
)
def test_hopx_file_commands(code, args):
    magic = parse_magic(code)
    assert magic.args == args and magic.local and magic.name == "hopx"


@pytest.mark.parametrize(
    "code, words",
    [
        ("%hopx upload", "usage: %hopx"),
        ("%hopx download a b c", "usage: %hopx"),
        ("%hopx delete x", "unknown %hopx command 'delete'"),
        ("%hopx upload 'unterminated", "usage: %hopx"),
        ("%hopx\nprint(1)", "%hopx must be alone in its cell"),
    ],
)
def test_bad_usage(code, words):
    with pytest.raises(MagicError, match=words):
        parse_magic(code)


@pytest.mark.parametrize(
    "code",
    [
        "print(1)",
        "%%timeit\nx = 1",
        "%%capture\nprint(1)",
        "%matplotlib inline",
        "%hopxx",
        "x = '%hopx'",
        "",
        "%%",
    ],
)
def test_everything_else_goes_to_the_sandbox(code):
    assert parse_magic(code) is None


def test_remote_path():
    assert remote_path("data.csv") == "/workspace/data.csv"
    assert remote_path("sub/dir/a.txt") == "/workspace/sub/dir/a.txt"
    assert remote_path("/tmp/a.txt") == "/tmp/a.txt"


def test_format_info():
    text = format_info(
        {"mode": "cloud", "sandbox_id": "sbx_1", "agent_version": "3.2.8", "error": None, "custom": 5}
    )
    lines = text.splitlines()
    assert text.endswith("\n")
    assert [line.split()[0] for line in lines] == ["mode", "sandbox", "agent", "custom"]
    assert lines[1].startswith("sandbox id ") and lines[1].endswith("  sbx_1")
    assert all(
        line.endswith(value) for line, value in zip(lines, ["cloud", "sbx_1", "3.2.8", "5"], strict=True)
    )
    assert (
        len({line.index(value) for line, value in zip(lines, ["cloud", "sbx_1", "3.2.8", "5"], strict=True)})
        == 1
    )  # aligned
    assert "error" not in text
    assert format_info({}) == ""
