"""regex.*: Python re syntax on RE2, delimiters and flags, linear time."""

from __future__ import annotations

import time


def test_match_returns_whole_match_groups_and_named_groups(run):
    """match gives [1] = whole match, [2..] = groups, and named groups by name."""
    envelope = run(r'return regex.match("order 66 shipped", "(?P<word>\\w+) (\\d+)")')
    assert envelope.result == [{"1": "order 66", "2": "order", "3": "66", "word": "order"}]


def test_match_returns_nil_without_a_match(run):
    """No match is nil."""
    assert run('return regex.match("abc", "\\\\d")').result == [None]


def test_unmatched_optional_group_is_an_empty_string(run):
    """A group that took no part is "" (so the list has no holes)."""
    envelope = run('local m = regex.match("a", "(a)(b)?") return #m, m[3]')
    assert envelope.result == [3, ""]


def test_delimiters_and_flags_are_accepted(run):
    """/pattern/flags works, with the i, m, s and x flags."""
    envelope = run(
        r"""
        return regex.match("Hello", "/hello/i")[1],
               #regex.match_all("a\nb", "/^\\w$/m"),
               regex.match("a\nb", "/a.b/s")[1],
               regex.match("abc123", "/ [a-z]+  # letters\n (\\d+) /x")[2]
        """
    )
    assert envelope.result == ["Hello", 2, "a\nb", "123"]


def test_match_all_lists_every_match(run):
    """match_all returns a list of match tables (sequences when no group is named)."""
    envelope = run('return regex.match_all("a1 b22 c333", "([a-z])(\\\\d+)")')
    assert envelope.result == [[["a1", "a", "1"], ["b22", "b", "22"], ["c333", "c", "333"]]]


def test_gsub_uses_python_replacement_syntax(run):
    r"""gsub replaces with \1 and \g<name> references, optionally a limited number of times."""
    envelope = run(
        r"""
        return regex.gsub("john smith", "(?P<first>\\w+) (\\w+)", "\\2, \\g<first>"),
               regex.gsub("aaa", "a", "b", 2),
               regex.gsub("x", "x", "tab\\there")
        """
    )
    assert envelope.result == ["smith, john", "bba", "tab\there"]


def test_gsub_accepts_a_function(run):
    """A Lua function replacement gets the match table; nil keeps the match."""
    envelope = run(
        """
        return regex.gsub("a1 b2", "([a-z])(\\\\d)", function(m)
          if m[2] == "b" then return nil end
          return m[3] .. m[2]
        end)
        """
    )
    assert envelope.result == ["1a b2"]


def test_split_follows_python(run):
    """split splits on the pattern, keeps groups and honours maxsplit."""
    envelope = run(
        r"""
        return regex.split("a, b,c", ",\\s*"), regex.split("a1b2c", "(\\d)"),
               regex.split("a,b,c", ",", 1)
        """
    )
    assert envelope.result == [["a", "b", "c"], ["a", "1", "b", "2", "c"], ["a", "b,c"]]


def test_pathological_pattern_returns_quickly(run):
    """A pattern that backtracks exponentially elsewhere runs in linear time here."""
    started = time.perf_counter()
    envelope = run('return regex.match(string.rep("a", 100000) .. "!", "(a+)+$")')
    assert envelope.result == [None]
    assert time.perf_counter() - started < 2.0


def test_unsupported_pattern_is_a_catchable_error_naming_the_problem(run):
    """Backreferences and lookaround are refused with a catchable, explanatory error."""
    envelope = run(
        r"""
        local _, a = pcall(regex.match, "aa", "(a)\\1")
        local _, b = pcall(regex.match, "ab", "a(?=b)")
        local _, c = pcall(regex.match, "a", "(")
        return a, b, c
        """
    )
    backreference, lookahead, unbalanced = envelope.result
    assert "invalid or unsupported pattern" in backreference
    assert "invalid escape sequence" in backreference
    assert "(?=" in lookahead
    assert "missing )" in unbalanced


def test_bad_replacement_reference_is_an_error(run):
    """A reference to a group that does not exist is a catchable error."""
    envelope = run('return pcall(regex.gsub, "a", "(a)", "\\\\2")')
    assert envelope.result == [False, "regex.gsub: invalid group reference 2"]


def test_binary_subjects_match_bytewise(run):
    """Non-UTF-8 subjects still match; offsets and results are bytes."""
    envelope = run('local m = regex.match("\\xff\\xfeabc", "abc") return m[1], #regex.gsub("\\xffx", "x", "y")')
    assert envelope.result == ["abc", 2]


def test_z_anchor_has_its_python_meaning(run):
    r"""\Z means end of text, as in Python."""
    envelope = run(r'return regex.match("ab", "b\\Z") ~= nil, regex.match("ba", "b\\Z") == nil')
    assert envelope.result == [True, True]
