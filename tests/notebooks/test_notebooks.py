"""Every notebook runs top to bottom, headless, and shows what its text promises."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Outputs each notebook must show (text of any output, in order of appearance).
EXPECTED = {
    "01_verifier_walkthrough": [
        "<Object count_protocols.bpf.o: 1 program(s), 1 map(s)>",
        "0: (bf) r6 = r1",
        "count_protocols: accepted",
        "bpfnb: count_protocols: rejected at insn 25: R0 invalid mem access 'map_value_or_null'",
        "kernel: R0 invalid mem access 'map_value_or_null'",
        "A pointer that may be NULL was dereferenced",
        "(85) call bpf_map_lookup_elem#1",
        "from the log alone: 26 instructions, 25 visits, error: R0 invalid mem access 'map_value_or_null'",
    ],
    "02_btf_type_tracking": [
        "CO-RE insn 1: field_byte_offset sk_buff.dev: 0 -> 16",
        "typedef void (*btf_trace_kfree_skb)(void *, struct sk_buff *, void *, enum skb_drop_reason, struct sock *);",
        "walk_skb: accepted (11 insns processed, 0 states) · PROBE_MEM loads at [2]",
        "ctx →[arg 0 (struct sk_buff *)] struct sk_buff (trusted_ptr_) →[dev] struct net_device (untrusted_ptr_) "
        "→[ifindex] scalar",
        "bpfnb error: R1 invalid mem access 'scalar'",
        "A number was used as a pointer",
        "loaded from the context at +0",
        "1: R1=trusted_ptr_sk_buff()",
        "trust_levels: accepted",
        "struct task_struct →[real_parent] struct task_struct (rcu_ptr_) →[pid] scalar",
        "ctx →[arg 0 (struct sk_buff *)] struct sk_buff (trusted_ptr_) →[sk] struct sock (rcu_ptr_or_null_)",
        "insn  0: ctx →[arg 3 (struct sock *)] struct sock: trusted_ptr_or_null_",
        "insn  3: struct sk_buff →[dev] struct net_device: untrusted_ptr_",
        "before the NULL check: R6 = trusted_ptr_or_null_sock(id=1)",
        "after it:              R6 = trusted_ptr_sock()",
        "bpfnb error: R1 is of type task_struct but sock_common is expected",
        "A helper got a pointer to the wrong kernel struct",
        "R1 points to a struct task_struct, but this helper argument takes a struct sock_common",
        "kernel error: R1 is of type task_struct but sock_common is expected",
    ],
    "03_jit_and_exception_tables": [
        "walk_skb: 12 BPF insns -> 96 bytes of x86-64 in 1 function(s)",
        "insn 2: load at +0x3e -> zero r1, resume at +0x44",
        "; 2: (61) r1 = *(u32 *)(r1 +224)",
        "unmapped dev         native   r0=0 PROBE_MEM faults recovered=1 walked=0",
        "unmapped dev         unicorn  r0=0 PROBE_MEM faults recovered=1 walked=0",
        "dev with ifindex 7   native   r0=0 PROBE_MEM faults recovered=0 walked=7",
        "JitError: wild: insn 2 ((79) r0 = *(u64 *)(r1 +0)): invalid memory access at address 0xdead0000",
        "still here",
        "walk_skb: 11 of 11 BPF instructions byte-equal to the kernel's JIT (100%)",
    ],
    "04_skb_events": [
        "20 events; PROBE_MEM faults: 5",
        "SOCKET_RCVBUFF",
        "JIT frame equals the interpreter's: True · PROBE_MEM faults: 5",
        "live: 10 drops to port",
        "one schema: True",
    ],
    "05_corpus_and_scale": [
        "objects, e.g.",
        "dashboard: http://",
        "same rows as in this process: True",
        "File",
        "programs compared,",
        "changed by the same number of instructions in both verifiers",
        "6 rows: {'NO_SOCKET': 3, 'SOCKET_RCVBUFF': 3}",
        "1,000,000 rows in 80 partitions",
        "drops by reason: {'NO_SOCKET':",
        "done",
    ],
}


def _texts(nb) -> str:
    """Every output's text; a stream that reached us in several chunks (the kernel
    flushes stdout on a timer, so on a loaded machine one print can arrive split
    between its words) is joined back as it was written."""
    out = []
    for cell in nb.cells:
        stream = None
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                pytest.fail(f"{o['ename']}: {o['evalue']}")
            if o.get("output_type") == "stream" and o.get("name") == stream:
                out[-1] += o["text"]
                continue
            stream = o.get("name") if o.get("output_type") == "stream" else None
            if stream is not None:
                out.append(o["text"])
                continue
            for key in ("text/plain", "text/html"):
                out.append(o.get("data", {}).get(key, ""))
    return "\n".join(out)


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_results(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    text = _texts(nb)
    position = 0
    for expected in EXPECTED[path.stem]:
        found = text.find(expected, position)
        assert found >= 0, f"{path.name}: {expected!r} not shown (after position {position})"
        position = found


def test_a_print_split_into_chunks_is_read_whole():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('bpfnb error:', error)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("bpfnb error:", " R1\n")]
    nb.cells = [cell]
    assert "bpfnb error: R1" in _texts(nb)


def test_every_notebook_has_expectations_and_no_stored_outputs():
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


def test_the_lab_saves_the_shipped_notebooks_without_outputs(tmp_path):
    """``make lab`` passes bpfnb.examples.strip_outputs as the pre-save hook."""
    import copy

    from jupyter_server.services.contents.filemanager import FileContentsManager

    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook="bpfnb.examples.strip_outputs")
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="ran\n")]
    code.execution_count = 3
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for name in (NOTEBOOKS[0].name, "mine.ipynb"):
        content = nbformat.from_dict(copy.deepcopy(nb))  # the hook edits the model in place
        manager.save({"type": "notebook", "format": "json", "content": content}, name)
    shipped = nbformat.read(tmp_path / NOTEBOOKS[0].name, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in shipped.cells if c.cell_type == "code") and "widgets" not in shipped.metadata
    mine = nbformat.read(tmp_path / "mine.ipynb", as_version=4)  # the user's own: untouched
    assert any(c.get("outputs") for c in mine.cells if c.cell_type == "code")


def test_the_readme_first_look_runs_from_the_notebooks_directory():
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A first look"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)[1]
    out = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT / "notebooks", capture_output=True,
                         text=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-600:]
    assert "0: (79) r1 = *(u64 *)(r1 +0)" in out.stdout and "; prologue" in out.stdout
