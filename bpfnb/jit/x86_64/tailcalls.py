"""Tail calls in a JIT image: where a prog array's slots are, and the prog
arrays a user-mode run jumps through.

The kernel's code reads ``struct bpf_array`` (``map.max_entries``, then the
slot ``ptrs[index]``, a ``struct bpf_prog *``) and ``bpf_prog->bpf_func``.
The offsets come from the kernel's BTF when it has those structs, so our
image's bytes are the kernel's; otherwise a small layout of our own is used.
For a run in this process the same structures are laid out in the VM's
memory: one array per prog array, one ``bpf_prog`` per target whose
``bpf_func`` is the target's code in the mapped image (written once the
image's address is known).
"""

from __future__ import annotations

from ...errors import JitError
from ...isa import opcodes as op
from .compiler import TailCallLayout

OWN_LAYOUT = TailCallLayout(max_entries=0, ptrs=8, bpf_func=0, array_size=8, prog_size=8)


def _offset(btf, struct: str, path: tuple[str, ...]) -> int:
    """Byte offset of ``struct.path`` (anonymous members opened)."""
    from ...vm.memory import _members_flat

    type_id, total = btf.find(struct, "struct"), 0
    for name in path:
        for member, base in _members_flat(btf, btf.resolve(type_id)):
            if member.name == name:
                total += base + member.bit_offset // 8
                type_id = member.type
                break
        else:
            raise JitError(f"{btf.name}: no member {name} in {btf.name_of(type_id)}")
    return total


def layout_from_btf(btf) -> TailCallLayout:
    """The kernel's offsets, or ``OWN_LAYOUT`` when the BTF lacks the structs."""
    from ...errors import BtfError

    if btf is None:
        return OWN_LAYOUT
    try:
        array = btf.find("bpf_array", "struct")
        return TailCallLayout(max_entries=_offset(btf, "bpf_array", ("map", "max_entries")),
                              ptrs=_offset(btf, "bpf_array", ("ptrs",)),
                              bpf_func=_offset(btf, "bpf_prog", ("bpf_func",)),
                              array_size=btf.type(array).size,
                              prog_size=btf.type(btf.find("bpf_prog", "struct")).size)
    except (BtfError, JitError):
        return OWN_LAYOUT


def has_tail_calls(insns) -> bool:
    return any(i.code == op.BPF_JMP | op.BPF_CALL and i.src == 0 and i.imm == 12 for i in insns)


class ProgArrays:
    """The prog arrays of a VM with tail-call targets, laid out for the image.

    ``address(map_index)`` is what a 64-bit map load of a prog array puts in its
    register; ``link(image_base, function_start)`` writes every target's code
    address (``function_start(k)``: the image offset of stream program ``k``)."""

    def __init__(self, vm, layout: TailCallLayout):
        self.vm = vm
        self.layout = layout
        self.arrays: dict[int, int] = {}
        self.progs: dict[int, int] = {}  # stream program index -> its bpf_prog's address
        memory = vm.memory
        for k in range(len(vm.programs)):
            self.progs[k] = memory.add(f"bpf_prog {vm.programs[k].name}", max(layout.prog_size, layout.bpf_func + 8),
                                       kind="jit")
        maps = list(getattr(vm.prog, "maps", ()))
        for index, definition in enumerate(maps):
            if definition.type != "prog_array":
                continue
            slots = max(definition.max_entries, 1)
            size = max(layout.array_size, layout.ptrs) + 8 * slots
            address = memory.add(f"bpf_array {definition.name}", size, kind="jit")
            memory.write(address + layout.max_entries, slots.to_bytes(4, "little"))
            for slot in range(slots):
                entry = int.from_bytes(memory.read(int(vm.map_addr[index]) + 8 * slot, 8), "little")
                if entry:  # the interpreter's slot: the target's first instruction in the stream + 1
                    k = vm.starts.index(entry - 1)
                    memory.write(address + layout.ptrs + 8 * slot, self.progs[k].to_bytes(8, "little"))
            self.arrays[index] = address

    def target(self, map_index: int, key: int) -> int | None:
        """The stream's program number in slot ``key`` of prog array ``map_index`` (None: empty)."""
        vm = self.vm
        if map_index not in self.arrays or not 0 <= key < int(vm.map_max[map_index]):
            return None
        entry = int.from_bytes(vm.memory.read(int(vm.map_addr[map_index]) + 8 * key, 8), "little")
        return vm.starts.index(entry - 1) if entry else None

    def address(self, map_index: int) -> int | None:
        return self.arrays.get(map_index)

    def link(self, image_base: int, function_start) -> None:
        for k, prog in self.progs.items():
            self.vm.memory.write(prog + self.layout.bpf_func, (image_base + function_start(k)).to_bytes(8, "little"))
