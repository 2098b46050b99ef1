"""bpfnb.stats in this process: rows of a corpus, veristat's filters and comparison, the CLI."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import bpfnb
from bpfnb.cli import main
from bpfnb.errors import BpfnbError
from bpfnb.stats import apply_filters, compare, find_objects, parse_filter, read, stats, write

from .conftest import OBJECTS, ROOT


def _row(frame, file, program):
    hit = frame[(frame["file"] == file) & (frame["program"] == program)]
    assert len(hit) == 1, f"{file}/{program}: {len(hit)} rows"
    return hit.iloc[0]


def test_a_directory_is_walked_for_objects_named_by_their_path_under_it(corpus):
    names = [o.name for o in find_objects([corpus])]
    assert names[0] == "broken/bad.o"
    assert "examples/count_protocols.bpf.o" in names and "fixtures/tracing.bpf.o" in names
    assert len(names) == len(OBJECTS) + 1


def test_user_space_objects_in_a_build_tree_are_skipped(tmp_path):
    shutil.copy(OBJECTS[0], tmp_path / "prog.bpf.o")
    host = tmp_path / "main.o"  # an x86-64 relocatable object, as a build tree has beside BPF ones
    host.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + (62).to_bytes(2, "little") + bytes(40))
    assert [o.name for o in find_objects([tmp_path])] == ["prog.bpf.o"]
    assert [o.name for o in find_objects([host])] == ["main.o"]  # named explicitly: kept


def test_rows_carry_the_verifiers_figures(corpus):
    frame = stats([corpus], progress=False)
    assert list(frame.columns[:4]) == ["file", "program", "section", "type"]
    ok = _row(frame, "examples/count_protocols.bpf.o", "count_protocols")
    assert (ok.verdict, ok.insns, ok.processed, ok.states, ok.peak_states, ok.stack_depth) == \
        ("accept", 29, 76, 6, 6, 8)
    assert pd.isna(ok.error) and ok.section == "socket" and ok.type == "socket_filter"
    bad = _row(frame, "examples/count_protocols_nocheck.bpf.o", "count_protocols")
    assert (bad.verdict, bad.error, bad.error_insn, bad.processed) == \
        ("reject", "R0 invalid mem access 'map_value_or_null'", 25, 25)
    typecast = _row(frame, "fixtures/tracing.bpf.o", "bad_typecast")
    assert (typecast.verdict, typecast.error, typecast.processed) == ("reject", "R1 invalid mem access 'scalar'", 3)
    assert frame["verdict"].value_counts().to_dict() == {"accept": 26, "reject": 15, "error": 1}


def test_a_rejected_programs_time_is_its_own(corpus):
    # time_us of a rejection was the monotonic clock itself (~3.6e8) before the fix
    frame = stats([corpus / "fixtures" / "tracing.bpf.o"], progress=False)
    rejected = frame[frame["verdict"] == "reject"]
    accepted = frame[frame["verdict"] == "accept"]
    assert len(rejected) == 13
    assert rejected["time_us"].max() < 10 * accepted["time_us"].max()


def test_an_object_that_does_not_load_is_a_row_with_its_error(corpus, tmp_path):
    frame = stats([corpus], progress=False)
    bad = frame[frame["file"] == "broken/bad.o"].iloc[0]
    assert bad.verdict == "error" and pd.isna(bad.program)
    assert bad.error == f"{corpus / 'broken' / 'bad.o'}: not an ELF file"
    truncated = tmp_path / "truncated.bpf.o"
    truncated.write_bytes(OBJECTS[0].read_bytes()[:200])
    row = stats([truncated], progress=False).iloc[0]
    assert row.verdict == "error" and row.error.startswith(f"{truncated}: malformed ELF object")


def test_a_path_that_does_not_exist_is_refused_naming_it(tmp_path):
    with pytest.raises(BpfnbError, match="nowhere.o: no such file or directory"):
        stats([tmp_path / "nowhere.o"])


def test_the_package_attribute_is_the_function_even_after_the_module_is_imported():
    import bpfnb.stats as module

    assert bpfnb.stats is module
    frame = bpfnb.stats(OBJECTS[0], progress=False)
    assert frame.loc[0, "program"] == "call_subprogs" and callable(bpfnb.stats.compare)


def test_progress_is_reported_per_object(corpus):
    seen = []
    stats([corpus], progress=lambda done, total: seen.append((done, total)))
    total = len(OBJECTS) + 1
    assert seen == [(k, total) for k in range(1, total + 1)]


def test_out_files_keep_every_field_and_read_back(corpus, tmp_path):
    frame = stats([corpus / "examples"], progress=False)
    for suffix in (".parquet", ".csv"):
        write(frame, str(tmp_path / f"run{suffix}"))
        back = read(tmp_path / f"run{suffix}")
        assert list(back.columns) == list(frame.columns)
        assert back["processed"].tolist() == frame["processed"].tolist()
    with pytest.raises(BpfnbError, match=r"run.json: write .parquet or .csv"):
        write(frame, str(tmp_path / "run.json"))


# -- filters ----------------------------------------------------------------------------------
def test_filters_read_as_veristat_reads_them():
    f = parse_filter("processed>1000")
    assert (f.column, f.value, f.deny) == ("processed", 1000.0, False)
    assert parse_filter("!verdict=failure").column == "verdict" and parse_filter("!verdict=failure").value == 0.0
    assert parse_filter("duration<=5").column == "time_us"
    assert parse_filter("insns_diff>0", comparison=True).column == "insns_diff"
    assert parse_filter("insns", comparison=True).any_glob == "insns"  # no operator: a name glob
    assert parse_filter("processed>1", comparison=True).column == "processed_new"  # veristat: _b
    assert parse_filter("processed_a>1", comparison=True).column == "processed_base"
    g = parse_filter("tracing*/bad_*")
    assert (g.file_glob, g.prog_glob) == ("tracing*", "bad_*")


@pytest.mark.parametrize("text, reason", [
    ("frobs>1", "'frobs' is not a numeric field"),
    ("processed>lots", "'lots' is not a number"),
    ("processed_diff>1", "_diff applies to a comparison"),
])
def test_a_bad_filter_is_refused_with_its_reason(text, reason):
    with pytest.raises(BpfnbError, match=reason):
        parse_filter(text)


def test_filters_keep_what_veristat_keeps(corpus):
    frame = stats([corpus], progress=False)
    big = apply_filters(frame, ["processed>50"])
    assert sorted(big["program"]) == ["count_protocols", "xdp_count"]
    assert set(apply_filters(frame, ["tracing*/bad_*"])["program"].str[:4]) == {"bad_"}
    accepted_tracing = apply_filters(frame, ["tracing*", "!verdict=reject"])
    assert len(accepted_tracing) == 13 and set(accepted_tracing["verdict"]) == {"accept"}
    # allow filters of one kind are alternatives
    assert len(apply_filters(frame, ["processed=76", "processed=56"])) == 2


# -- comparison -------------------------------------------------------------------------------
@pytest.fixture
def two_builds(tmp_path):
    """Two "builds": count_protocols with and without its NULL check, one object only in
    each, one the same in both."""
    base, new = tmp_path / "base", tmp_path / "new"
    base.mkdir(), new.mkdir()
    examples = ROOT / "bpfnb" / "data" / "examples"
    fixtures = ROOT / "tests" / "fixtures"
    shutil.copy(examples / "count_protocols.bpf.o", base / "count_protocols.bpf.o")
    shutil.copy(examples / "count_protocols_nocheck.bpf.o", new / "count_protocols.bpf.o")
    shutil.copy(fixtures / "xdp.bpf.o", base)
    shutil.copy(fixtures / "xdp.bpf.o", new)
    shutil.copy(fixtures / "globals.bpf.o", base)
    shutil.copy(fixtures / "raw_tp.bpf.o", new)
    return base, new


def test_compare_puts_verdict_flips_first_with_veristats_differences(two_builds):
    diff = compare(*two_builds)
    assert diff[["file", "program", "present"]].values.tolist() == [
        ["count_protocols.bpf.o", "count_protocols", "both"],
        ["globals.bpf.o", "count_large", "base"],
        ["raw_tp.bpf.o", "raw_kfree_skb", "new"],
        ["xdp.bpf.o", "xdp_count", "both"],
    ]
    flip = diff.iloc[0]
    assert (flip.verdict_base, flip.verdict_new, flip.verdict_diff) == ("accept", "reject", "MISMATCH")
    assert (flip.processed_base, flip.processed_new, flip.processed_diff) == (76, 25, -51)
    assert flip.processed_pct == pytest.approx(-67.105, abs=1e-3)
    same = diff.iloc[3]
    assert (same.verdict_diff, same.processed_diff, same.processed_pct) == ("MATCH", 0, 0.0)
    assert diff.iloc[1].verdict_diff == "N/A" and pd.isna(diff.iloc[1].processed_diff)
    assert diff.attrs["flips"] == 1


def test_compare_reads_out_files_and_filters_on_differences(two_builds, tmp_path):
    base, new = two_builds
    write(stats([base], progress=False), str(tmp_path / "base.parquet"))
    write(stats([new], progress=False), str(tmp_path / "new.csv"))
    shrunk = compare(tmp_path / "base.parquet", tmp_path / "new.csv", filter="processed_diff<0")
    assert shrunk["program"].tolist() == ["count_protocols"]
    assert compare(tmp_path / "base.parquet", tmp_path / "new.csv", filter="!count*").attrs["flips"] == 0


def test_compare_reads_veristats_csv(tmp_path):
    (tmp_path / "a.csv").write_text("file_name,prog_name,verdict,duration,total_insns,total_states,peak_states\n"
                                    "x.bpf.o,p,success,10,100,5,5\n")
    (tmp_path / "b.csv").write_text("file_name,prog_name,verdict,duration,total_insns,total_states,peak_states\n"
                                    "x.bpf.o,p,failure,12,90,4,4\n")
    row = compare(tmp_path / "a.csv", tmp_path / "b.csv").iloc[0]
    assert (row.verdict_base, row.verdict_new, row.processed_diff, row.states_diff) == ("accept", "reject", -10, -1)


def test_cli_compare_prints_veristats_columns_and_exits_1_on_a_flip(two_builds, capsys):
    assert main(["stats", "--compare", *map(str, two_builds)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[1].split() == ["File", "Program"] + ["A", "B", "DIFF"] * 3
    assert lines[3].split() == ["count_protocols.bpf.o", "count_protocols", "accept", "reject", "MISMATCH",
                                "76", "25", "-51", "(-67.11%)", "6", "1", "-5", "(-83.33%)"]
    assert "4 programs compared, 1 verdict flip(s)" in out
    assert main(["stats", "--compare", *map(str, two_builds), "-f", "xdp*"]) == 0


def test_cli_table_fits_120_columns_and_out_keeps_every_field(corpus, tmp_path, capsys):
    out = tmp_path / "all.parquet"
    assert main(["stats", str(corpus), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["File", "Program", "Verdict", "Insns", "Processed", "States", "Peak", "Time", "(us)"]
    assert max(len(line) for line in lines) <= 120
    assert "41 programs in 14 objects: 26 accepted, 15 rejected; 1 objects did not load" in text
    assert "broken/bad.o: not an ELF file" in text
    assert list(pd.read_parquet(out).columns) == list(stats([corpus / "examples"], progress=False).columns)


def test_cli_fields_choose_the_columns(corpus, capsys):
    assert main(["stats", str(corpus / "examples"), "--fields", "program,verdict,error"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Program", "Verdict", "Error"]
    assert "count_protocols  reject   R0 invalid mem access 'map_value_or_null'" in lines


@pytest.mark.kernel
def test_vs_kernel_agrees_except_where_the_kernel_refuses(corpus, capsys):
    frame = stats([corpus], vs_kernel=True, progress=False)
    fentry = _row(frame, "fixtures/fentry.bpf.o", "on_tcp_connect")
    assert fentry.kernel_verdict == "refused" and pd.isna(fentry.kernel_match)
    assert "EPERM" in fentry.kernel_error
    compared = frame[frame["kernel_match"].notna()]
    assert len(compared) == 40 and compared["kernel_match"].all()
    ok = _row(frame, "examples/count_protocols.bpf.o", "count_protocols")
    assert (ok.kernel_verdict, ok.kernel_processed) == ("accept", 76) and ok.kernel_time_us > 0
    assert main(["stats", str(corpus / "examples"), "--vs-kernel"]) == 0
    assert "the kernel agrees on 4 of 4 verdicts" in capsys.readouterr().out


def test_a_corpus_run_shows_no_bar_per_program(corpus, monkeypatch, capsys):
    """The corpus has its own bar; a long program's own 'verifying …' bar is not drawn
    inside it (made to appear at once here: looked for at every instruction, from 0 s)."""
    from bpfnb.verifier import check, progress

    monkeypatch.setattr(check, "CHECK_EVERY", 1)
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    prog = bpfnb.load(OBJECTS[0]).program()
    bpfnb.verify(prog, trace=False)
    assert f"verifying {prog.name}" in capsys.readouterr().err  # a bare verify draws one
    stats([corpus], progress=False)
    assert "verifying" not in capsys.readouterr().err
