"""Local completion and is_complete, without the sandbox."""

from __future__ import annotations

from hopx_kernel.completion import complete_locally, defined_names, is_complete


def test_defined_names():
    sources = [
        "x = 1\ny, (z, w) = 2, (3, 4)\nfor idx in range(3): pass",
        "def fit(data):\n    return data\nasync def fetch(): pass\nclass Model: pass",
        "import numpy as np\nimport os.path\nfrom collections import OrderedDict as OD, deque\nfrom math import *",
        "with open('f') as handle: pass\ntotal += 1",
    ]
    names = defined_names(sources)
    assert {
        "x",
        "y",
        "z",
        "w",
        "idx",
        "fit",
        "fetch",
        "Model",
        "np",
        "os",
        "OD",
        "deque",
        "handle",
        "total",
    } <= names
    assert "numpy" not in names and "OrderedDict" not in names and "*" not in names
    assert "range" not in names and "open" not in names  # used, not bound


def test_defined_names_skips_cells_that_do_not_parse():
    assert defined_names(["good = 1", "bad = = 2", "%matplotlib inline", "also_good = 3"]) == {
        "good",
        "also_good",
    }
    assert defined_names(["x\x00 = 1"]) == set()


def test_complete_prefix_from_history():
    matches, start = complete_locally("dataf", 5, ["dataframe = load()", "data_file = 'a.csv'", "datum = 1"])
    assert (matches, start) == (["dataframe"], 0)


def test_complete_builtins_and_keywords():
    matches, start = complete_locally("x = pri", 7, [])
    assert "print" in matches and start == 4
    assert complete_locally("whi", 3, [])[0] == ["while"]
    assert all(m.startswith("is") for m in complete_locally("is", 2, [])[0])


def test_complete_sorted_without_dunders():
    matches, _ = complete_locally("", 0, ["zeta = 1", "alpha = 2"])
    assert matches == sorted(matches)
    assert "alpha" in matches and "zeta" in matches
    assert not any(m.startswith("__") for m in matches)


def test_complete_attribute_access_returns_nothing():
    assert complete_locally("np.ar", 5, ["import numpy as np"]) == ([], 5)
    assert complete_locally("df.", 3, ["df = 1"]) == ([], 3)


def test_complete_cursor_in_the_middle():
    code = "result = my_fu(3) + other"
    matches, start = complete_locally(code, 14, ["def my_func(a): pass", "def my_fun2(): pass"])
    assert (matches, start) == (["my_fun2", "my_func"], 9)


def test_complete_no_match():
    assert complete_locally("qqqzzz", 6, []) == ([], 0)


def test_is_complete():
    assert is_complete("x = 1") == {"status": "complete"}
    assert is_complete("for i in range(3):") == {"status": "incomplete", "indent": "    "}
    assert is_complete("def f():\n    if x:") == {"status": "incomplete", "indent": "        "}
    assert is_complete("x = (1,") == {"status": "incomplete", "indent": ""}
    assert is_complete("x = )")["status"] == "invalid"


def test_names_local_to_functions_classes_and_comprehensions_are_not_offered():
    cell = (
        "def outer(arg):\n    inner_local = arg\n    return inner_local\n"
        "class Box:\n    attribute_in_class = 1\n"
        "squares = [hidden_loop_var * 2 for hidden_loop_var in range(3)]\n"
        "for top_loop_var in range(2):\n    in_block = top_loop_var\n"
        "with open(__file__) as handle:\n    pass\n"
        "f = lambda lam_arg: lam_arg\n"
    )
    names = defined_names([cell])
    assert {"outer", "Box", "squares", "top_loop_var", "in_block", "handle", "f"} <= names
    assert not names & {"arg", "inner_local", "attribute_in_class", "hidden_loop_var", "lam_arg"}
