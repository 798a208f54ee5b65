"""Completion and ``is_complete`` computed in the kernel process, without the sandbox (pure).

Used when the agent has no [ext] ``/complete`` endpoint (or it does not answer in time):
names the notebook has defined, Python's builtins and keywords.

Example:
    >>> complete_locally("pri", 3, [])[0][:1]
    ['print']
    >>> is_complete("for i in range(3):")["status"]
    'incomplete'
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections.abc import Iterable

_IDENT_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def _bound(node: ast.AST, names: set[str]) -> None:
    """Names a module-level statement binds, looking into blocks but not into scopes."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
        return  # what is bound inside belongs to that scope
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name != "*":
                names.add((alias.asname or alias.name).split(".")[0])
        return
    if isinstance(node, ast.Lambda):
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        names.add(node.id)
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # comprehension variables do not leak
        _bound(child, names)


def defined_names(sources: Iterable[str]) -> set[str]:
    """Top-level names bound by the given cells (assignments, loops, ``with ... as``,
    defs, classes, imports; not names local to functions, classes or comprehensions)."""
    names: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        _bound(tree, names)
    return names


def complete_locally(code: str, cursor_pos: int, sources: Iterable[str]) -> tuple[list[str], int]:
    """Matches for the identifier before the cursor, and where it starts."""
    before = code[:cursor_pos]
    match = _IDENT_TAIL.search(before)
    prefix = match.group(0) if match else ""
    start = cursor_pos - len(prefix)
    if start > 0 and before[start - 1] == ".":
        return [], cursor_pos  # attributes need the live object: only the sandbox knows
    pool = defined_names(sources) | set(dir(builtins)) | set(keyword.kwlist)
    matches = sorted(n for n in pool if n.startswith(prefix) and not n.startswith("__"))
    return matches, start


def is_complete(code: str) -> dict:
    """Jupyter ``is_complete_reply`` content, using IPython's own input rules."""
    from IPython.core.inputtransformer2 import TransformerManager

    status, indent = TransformerManager().check_complete(code)
    reply: dict = {"status": status}
    if status == "incomplete":
        reply["indent"] = " " * (indent or 0)
    return reply
