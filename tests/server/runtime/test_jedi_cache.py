"""The shared completer cache: a first Tab in a new sandbox parses nothing, so it answers
inside JupyterLab's 1 s completer wait; caches of deleted environments are pruned."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from hopx_kernel.server.runtime import jedi_cache
from tests.support.server_helpers import agent, create, delete

#: Runs a sandbox's first completions with parso's in-memory cache emptied and lists the
#: files Jedi had to parse (``try_to_save_module`` is called for each one parsed afresh).
#: A function, so the probe's own imports stay out of the namespace Jedi infers.
PROBE = """
def _probe():
    import parso.cache, parso.grammar
    from IPython.core.completer import provisionalcompleter
    parsed = []
    save = parso.grammar.try_to_save_module
    def record(hashed, file_io, *args, **kw):
        if file_io.path is not None:
            parsed.append(str(file_io.path))
        return save(hashed, file_io, *args, **kw)
    parso.cache.parser_cache.clear()
    parso.grammar.try_to_save_module = record
    try:
        with provisionalcompleter():
            for code in ("sandbox_val", "import os; os.pa", "x = 1; x."):
                list(get_ipython().Completer.completions(code, len(code)))
    finally:
        parso.grammar.try_to_save_module = save
    return parsed
sandbox_value_xyz = 42
print(_probe())
"""


def test_a_first_tab_in_a_new_sandbox_parses_nothing(local_server):
    # Without the cache (or with one made for another checkout's files) this lists
    # builtins.pyi, typing.pyi, IPython's sources...: 2-3 s of parsing, and JupyterLab
    # drops a completer answer after 1 s.
    sandbox = create(local_server)
    try:
        r = agent(local_server, sandbox, "POST", "/execute", json={"code": PROBE, "timeout": 60})
        assert r.status_code == 200 and r.json()["success"], r.text
        assert ast.literal_eval(r.json()["stdout"]) == [], "parsed afresh, not from the cache"
    finally:
        delete(local_server, sandbox)


def test_the_cache_belongs_to_this_environment():
    folder = jedi_cache.ensure()
    assert folder == jedi_cache.cache_dir() and folder is not None
    assert (folder / jedi_cache.SOURCE).read_text().strip() == sys.prefix


def test_prune_removes_caches_of_environments_that_are_gone(tmp_path):
    def cache(name: str, prefix: str | None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if prefix is not None:
            (folder / jedi_cache.SOURCE).write_text(prefix + "\n")
        return folder

    live = cache("jedi-py311-aaaa", sys.prefix)
    gone = cache("jedi-py311-bbbb", str(tmp_path / "deleted-checkout" / ".venv"))
    legacy = cache("jedi-py311", None)  # made before caches named their environment
    building = cache("jedi-py311-cccc.tmp-123", None)
    other = cache("npm", None)
    assert sorted(jedi_cache.prune(tmp_path)) == sorted([gone, legacy])
    assert live.is_dir() and building.is_dir() and other.is_dir()
    assert not gone.exists() and not legacy.exists()
