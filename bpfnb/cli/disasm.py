"""``bpfnb disasm OBJ [--prog NAME] [--type T | --section S] [--raw]``: instructions
in the kernel's log syntax."""

from __future__ import annotations

import argparse

from ..isa.disasm import format_insn


def program_listing(prog, *, source: bool = True) -> str:
    """A program's relocated instructions, with its source lines as ``;`` comments."""
    lines = [f"{prog.name}: section {prog.section or '-'}, type {prog.type}, {len(prog.insns)} insns"
             + (f", attach {prog.attach_name}" if prog.attach_name else "")
             + (f" ({prog.type_note})" if prog.type_note else "")]
    lines += [f"; warning: {w}" for w in prog.warnings]
    shown_line = None
    i = 0
    insns = prog.insns
    while i < len(insns):
        li = prog.source_line(i) if source else None
        if li is not None and li.insn == i and li.text.strip() and (li.file, li.line) != shown_line:
            lines.append(f"; {li.text.strip()} @ {li.file.rsplit('/', 1)[-1]}:{li.line}")
            shown_line = (li.file, li.line)
        nxt = insns[i + 1] if insns[i].is_ld_imm64 and i + 1 < len(insns) else None
        lines.append(f"{i}: {format_insn(insns[i], nxt)}")
        i += 2 if insns[i].is_ld_imm64 else 1
    for r in prog.core_relocs:
        lines.append(f"; CO-RE {r}")
    return "\n".join(lines)


def section_listing(path: str) -> str:
    """Every code section's instructions as stored (unrelocated), like ``llvm-objdump -d``."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    from ..errors import ElfError
    from ..isa import decode

    out = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if not elf.little_endian:
                raise ElfError(f"{path}: a big-endian object (clang -target bpfeb); bpfnb reads little-endian "
                               "BPF objects only")
            for sec in elf.iter_sections():
                if sec["sh_type"] != "SHT_PROGBITS" or not sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR:
                    continue
                insns = decode(sec.data(), where=f"{path}:{sec.name}")
                if not insns:
                    continue
                out.append(f"section {sec.name}:")
                i = 0
                while i < len(insns):
                    nxt = insns[i + 1] if insns[i].is_ld_imm64 and i + 1 < len(insns) else None
                    out.append(f"{i}: {format_insn(insns[i], nxt)}")
                    i += 2 if insns[i].is_ld_imm64 else 1
    except OSError as exc:
        raise ElfError(f"{path}: cannot read: {exc.strerror}") from None
    except Exception as exc:  # pyelftools on a damaged file
        if isinstance(exc, ElfError):
            raise
        raise ElfError(f"{path}: malformed ELF object: {exc}") from None
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    if args.raw:
        print(section_listing(args.obj))
        return 0
    from .programs import select

    chosen = select([args.obj], args)
    if chosen.programs:
        print("\n\n".join(program_listing(p, source=not args.no_source) for p in chosen.programs))
    return chosen.report()


def add_parser(sub) -> None:
    from .programs import add_options

    p = sub.add_parser("disasm", help="disassemble an object's programs in the kernel's log syntax",
                       description="Print each program of OBJ as the kernel's verifier log shows it "
                                   "(relocated; source lines from BTF line info).")
    p.add_argument("obj", help="a BPF ELF object (.bpf.o)")
    add_options(p)
    p.add_argument("--raw", action="store_true", help="the code sections as stored, unrelocated")
    p.add_argument("--no-source", action="store_true", help="omit the source lines")
    p.set_defaults(func=run)
