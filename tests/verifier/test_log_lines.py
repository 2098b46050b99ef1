"""The line-for-line comparison of two verifier logs (``bpfnb.logtext.compare_lines``, the
agreement harness's measure) and what it leaves aside."""

from bpfnb.logtext import comparable_lines, compare_lines

KERNEL = """func#0 @0
0: R1=ctx() R10=fp0
0: (18) r1 = 0xffff888146497a00       ; R1=map_ptr(map=m,ks=4,vs=4)
2: (b7) r0 = 0                        ; R0=0
3: (95) exit
verification time 59 usec
stack depth 0
"""
OURS = """func#0 @0
0: R1=ctx() R10=fp0
0: (18) r1 = 0x0                      ; R1=map_ptr(map=m,ks=4,vs=4)
2: (b7) r0 = 0                        ; R0=0
3: (95) exit
verification time 1234 usec
stack depth 0
"""


def test_map_addresses_their_column_and_the_time_are_no_difference():
    assert comparable_lines(KERNEL) == comparable_lines(OURS)
    assert comparable_lines(KERNEL)[2] == "0: (18) r1 = ADDR ; R1=map_ptr(map=m,ks=4,vs=4)"
    assert compare_lines(comparable_lines(KERNEL), comparable_lines(OURS)).identical


def test_a_line_missing_counts_once_and_the_first_difference_is_named():
    theirs = ["a", "b", "mark_precise: x", "c", "d"]
    ours = ["a", "b", "c", "d", "e"]
    result = compare_lines(theirs, ours)
    assert (result.same, result.total, result.other_total) == (4, 5, 5)
    assert result.first_diff == (2, "mark_precise: x", "c")
    assert not result.identical


def test_a_log_cut_short_is_past_the_end():
    result = compare_lines(["a", "b"], ["a"])
    assert (result.same, result.first_diff) == (1, (1, "b", None))


def test_long_logs_parting_early_are_matched_between_unique_lines():
    # 30,000 lines each side (difflib alone: the product of the middles, 9e8 steps):
    # three of the kernel's lines missing from ours, two of ours not in the kernel's,
    # and repeated lines (no unique anchor among them) matched greedily
    theirs = [f"{i}: (b7) r0 = {i}" if i % 100 else "safe" for i in range(30_000)]
    ours = list(theirs)
    del ours[29_000], ours[15_000], ours[5]
    ours.insert(10, "mark_precise: extra")
    ours.insert(20_000, "from 1 to 2: extra")
    result = compare_lines(theirs, ours)
    assert (result.same, result.total, result.other_total) == (29_997, 30_000, 29_999)
    assert result.first_diff == (5, theirs[5], theirs[6])
