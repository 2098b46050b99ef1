""".kconfig and .ksyms externs resolved as libbpf resolves them (tests/fixtures/externs.bpf.c)."""

import os
import pathlib

import pytest

import bpfnb
from bpfnb.btf import LIVE_VMLINUX, kernel_btf
from bpfnb.elf import externs
from bpfnb.errors import RelocationError
from bpfnb.isa import imm64
from bpfnb.isa import opcodes as op

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/externs.bpf.o"
GOLDEN = ROOT / "tests/fixtures/externs.libbpf.log"
needs_vmlinux = pytest.mark.skipif(not os.access(LIVE_VMLINUX, os.R_OK), reason=f"{LIVE_VMLINUX} not readable")
# the fixture's strong ksyms (bpf_prog_active, bpf_rcu_read_lock) are in the live kernel's BTF only
pytestmark = needs_vmlinux
CONFIG = 'CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\nCONFIG_IPV6=m\nCONFIG_DEFAULT_HOSTNAME="bpfnb-host"\n' \
         "# CONFIG_BPFNB_NOT_A_CONFIG is not set\n"


@pytest.fixture(scope="module")
def obj():
    return bpfnb.load(FIXTURE, kernel_btf=kernel_btf(), kconfig=CONFIG)


def test_kernel_version_as_libbpf_computes_it():
    assert externs.kernel_version("6.18.44-fc-v1045") == 0x06122C
    assert externs.kernel_version("5.4.300") == 0x0504FF  # the sublevel is clamped to 255
    assert externs.kernel_version("garbage") == 0


def test_kconfig_values_and_layout(obj):
    release = os.uname().release
    assert obj.kconfig == {
        "CONFIG_HZ": 300, "CONFIG_IPV6": 2, "LINUX_KERNEL_VERSION": externs.kernel_version(release),
        "CONFIG_BPFNB_NOT_A_CONFIG": 0, "CONFIG_BPF_SYSCALL": 1,
        "LINUX_HAS_BPF_COOKIE": 1,  # BPF_FUNC_get_attach_cookie is in the kernel's enum bpf_func_id
        "CONFIG_DEFAULT_HOSTNAME": "bpfnb-host",
    }
    # libbpf's layout: by descending alignment, then size, then name
    layout = [(r.extern.name, r.extern.data_off) for r in obj.externs if r.extern.section == ".kconfig"]
    assert layout == [("CONFIG_HZ", 0), ("CONFIG_IPV6", 4), ("LINUX_KERNEL_VERSION", 8),
                      ("CONFIG_BPFNB_NOT_A_CONFIG", 12), ("CONFIG_BPF_SYSCALL", 13), ("LINUX_HAS_BPF_COOKIE", 14),
                      ("CONFIG_DEFAULT_HOSTNAME", 15)]
    (kmap,) = [m for m in obj.maps if m.section == ".kconfig"]
    assert (kmap.name, kmap.value_size, kmap.initial[:4]) == ("externs.kconfig", 31, (300).to_bytes(4, "little"))
    assert "extern 'CONFIG_BPFNB_NOT_A_CONFIG' (weak): not resolved, defaulting to zero" in obj.notes


def test_kconfig_loads_read_the_kconfig_map(obj):
    prog = obj.program("kconfig_values")
    index = [m.section for m in prog.maps].index(".kconfig")
    first = prog.insns[0]  # r1 = LINUX_KERNEL_VERSION's address
    assert first.is_ld_imm64 and (first.src, first.imm) == (op.BPF_PSEUDO_MAP_IDX_VALUE, index)
    assert prog.insns[1].imm == 8


def test_ksyms_become_kernel_btf_ids_addresses_and_kfunc_calls(obj):
    btf = kernel_btf()
    typed = obj.program("typed_ksym").insns[0]
    assert (typed.src, typed.imm) == (op.BPF_PSEUDO_BTF_ID, btf.find("bpf_prog_active", "var"))
    prog = obj.program("ksyms")
    calls = [i for i in prog.insns if i.code == op.BPF_JMP | op.BPF_CALL and i.src == op.BPF_PSEUDO_KFUNC_CALL]
    assert [c.imm for c in calls] == [btf.find("bpf_rcu_read_lock", "func"), btf.find("bpf_rcu_read_unlock", "func")]
    by_name = {r.extern.name: r for r in obj.externs}
    missing = by_name["bpfnb_no_such_kfunc"]
    assert not missing.is_set and missing.index == 10
    poisoned = [i for i in prog.insns if i.code == op.BPF_JMP | op.BPF_CALL and i.imm == 2002000010]
    assert len(poisoned) == 1  # libbpf's "unknown#2002000000 + extern index"
    # bpf_ksym_exists(missing): a 64-bit zero
    (check,) = [k for k, i in enumerate(prog.insns) if i.is_ld_imm64 and k > 0 and imm64(prog.insns, k) == 0]
    assert prog.insns[check].src == 0
    address = by_name["jiffies_to_msecs"]
    assert address.is_set and address.extern.typeless


def test_typeless_ksyms_from_kallsyms_text():
    from elftools.elf.elffile import ELFFile

    from bpfnb.btf import Btf

    with open(FIXTURE, "rb") as f:
        elf = ELFFile(f)
        btf = Btf.from_bytes(elf.get_section_by_name(".BTF").data())  # as clang wrote it: extern linkage
        found = externs.collect(btf, list(elf.get_section_by_name(".symtab").iter_symbols()),
                                where="externs.bpf.o")
    sources = externs.ExternSources(kconfig=CONFIG, kallsyms="ffffffff81426960 T jiffies_to_msecs\n",
                                    release="6.18.44")
    resolved, data = externs.resolve(found, btf, kernel_btf(), sources, where="externs.bpf.o", notes=[])
    (jiffies,) = [r for r in resolved if r.extern.name == "jiffies_to_msecs"]
    assert jiffies.addr == 0xFFFFFFFF81426960
    assert data[8:12] == (0x06122C).to_bytes(4, "little")
    ambiguous = externs.ExternSources(kconfig=CONFIG, kallsyms="1 T jiffies_to_msecs\n2 t jiffies_to_msecs\n")
    with pytest.raises(RelocationError, match="'jiffies_to_msecs': resolution is ambiguous"):
        externs.resolve(found, btf, kernel_btf(), ambiguous, where="externs.bpf.o", notes=[])


def test_a_strong_kconfig_extern_the_kernel_lacks_fails_the_programs_using_it():
    obj = bpfnb.load(FIXTURE, kernel_btf=kernel_btf(), kconfig="CONFIG_HZ=100\n")
    assert list(obj.failed) == ["kconfig_values"] and list(obj.programs) == ["typed_ksym", "ksyms"]
    with pytest.raises(RelocationError, match=r"externs.bpf.o:tp_btf/kfree_skb: insn 7: uses extern "
                                              r"'CONFIG_BPF_SYSCALL', which cannot be resolved \(extern \(kcfg\) "
                                              r"'CONFIG_BPF_SYSCALL' \(strong\): not resolved \(not set in the "
                                              r"kernel configuration\)\)"):
        obj.program("kconfig_values")
    obj = bpfnb.load(FIXTURE, kernel_btf=kernel_btf(), kconfig="CONFIG_HZ=y\nCONFIG_BPF_SYSCALL=y\n")
    with pytest.raises(RelocationError, match="'CONFIG_HZ': value 'y' implies bool, tristate or char type"):
        obj.program("kconfig_values")


def test_externs_equal_libbpfs_golden_log():
    from benchmarks.core_vs_libbpf import compare

    release = GOLDEN.read_text().splitlines()[0].rsplit(" ", 1)[-1]
    if release != os.uname().release:
        pytest.skip(f"golden log is of Linux {release}, this is {os.uname().release}")
    c = compare(str(FIXTURE), log=GOLDEN.read_text())
    # the machine's kernel configuration: the golden log read it from /proc/config.gz
    assert (c.externs, c.externs_agree, c.differ) == (23, 23, [])


def test_the_btf_handed_to_the_kernel_has_no_extern_linkage(obj):
    btf = obj.btf
    kinds = [btf.type(i) for i in range(1, len(btf))]
    assert not [t.name for t in kinds if t.kind == "var" and t.linkage == externs.VAR_EXTERN]
    assert not [t.name for t in kinds if t.kind == "func" and t.linkage == externs.FUNC_EXTERN]
    kconfig = btf.type(btf.find(".kconfig", "datasec"))
    assert kconfig.size == 31
    assert [(btf.type(v.type).name, v.offset) for v in kconfig.vars][:3] == \
        [("CONFIG_HZ", 0), ("CONFIG_IPV6", 4), ("LINUX_KERNEL_VERSION", 8)]
    ksyms = btf.type(btf.find(".ksyms", "datasec"))
    dummy = btf.find("dummy_ksym", "var")
    assert [v.offset for v in ksyms.vars] == [0, 4, 8, 12, 16] and ksyms.size == 20
    assert sum(v.type == dummy for v in ksyms.vars) == 3  # the three kfuncs


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="loading into the kernel needs root")
def test_the_kernel_takes_the_programs_with_their_btf(obj):
    from bpfnb.kernel import load

    for name in ("kconfig_values", "ksyms"):
        with load(obj.program(name), log_level=1) as loaded:
            assert loaded.ok and loaded.notes == ()  # the BTF (and line info) accepted
