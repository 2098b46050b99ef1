/* uBPF's interpreter timed on raw bytecode, for benchmarks/bench_vs_ubpf.py.
 *
 *   ubpf_driver PROGRAM PACKET REPEAT [INSNS]
 *
 * PROGRAM: raw instructions (8 bytes each); PACKET: the bytes r1 points at (the
 * skb's data, as bpfnb's socket_filter context sees it). Runs the program once,
 * then, when INSNS is given, checks it executes exactly INSNS instructions
 * (uBPF's instruction limit: INSNS passes, INSNS - 1 stops it), then REPEAT
 * timed runs (this process's CPU time). Prints "r0 NS_PER_RUN" (r0 in hex). Helper 26 is
 * bpf_skb_load_bytes(ctx, offset, to, len) over PACKET; no other helper.
 *
 * Built by `make ubpf-driver UBPF=<an installed uBPF prefix>` (include/ubpf.h,
 * lib/libubpf.a); uBPF itself is not part of bpfnb.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ubpf.h>

#define SKB_LOAD_BYTES 26
#define EFAULT 14
#define NS_PER_S 1000000000.0

static uint8_t *packet;
static size_t packet_len;

static uint64_t skb_load_bytes(uint64_t ctx, uint64_t offset, uint64_t to, uint64_t len, uint64_t unused)
{
    (void)ctx;
    (void)unused;
    if (offset > packet_len || len > packet_len - offset)
        return (uint64_t)-EFAULT;
    memcpy((void *)(uintptr_t)to, packet + offset, len);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); /* this process's CPU: steadier on a shared machine */
    return (double)t.tv_sec + (double)t.tv_nsec / NS_PER_S;
}

static int quiet(FILE *stream, const char *format, ...)
{
    (void)stream;
    (void)format;
    return 0;
}

static int run(struct ubpf_vm *vm, uint64_t *r0)
{
    return ubpf_exec(vm, packet, packet_len, r0);
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s PROGRAM PACKET REPEAT [INSNS]\n", argv[0]);
        return 2;
    }
    size_t code_len;
    uint8_t *code = slurp(argv[1], &code_len);
    packet = slurp(argv[2], &packet_len);
    long repeat = strtol(argv[3], NULL, 10);

    struct ubpf_vm *vm = ubpf_create();
    char *error = NULL;
    if (ubpf_register(vm, SKB_LOAD_BYTES, "bpf_skb_load_bytes", skb_load_bytes) != 0
        || ubpf_load(vm, code, (uint32_t)code_len, &error) != 0) {
        fprintf(stderr, "uBPF refused the program: %s\n", error ? error : "?");
        return 1;
    }
    uint64_t r0 = 0;
    if (run(vm, &r0) != 0) {
        fprintf(stderr, "uBPF failed to run the program\n");
        return 1;
    }
    if (argc == 5) {
        uint32_t insns = (uint32_t)strtoul(argv[4], NULL, 10);
        uint64_t ignored;
        ubpf_set_instruction_limit(vm, insns, NULL);
        if (run(vm, &ignored) != 0) {
            fprintf(stderr, "uBPF needs more than %u instructions\n", insns);
            return 1;
        }
        ubpf_set_error_print(vm, quiet); /* the stop below is expected */
        ubpf_set_instruction_limit(vm, insns - 1, NULL);
        if (run(vm, &ignored) == 0) {
            fprintf(stderr, "uBPF ran it in fewer than %u instructions\n", insns);
            return 1;
        }
        ubpf_set_error_print(vm, NULL);
        ubpf_set_instruction_limit(vm, 0, NULL);
    }
    double start = now();
    for (long k = 0; k < repeat; k++)
        run(vm, &r0);
    double seconds = now() - start;
    printf("%#llx %.1f\n", (unsigned long long)r0, seconds * NS_PER_S / (double)repeat);
    ubpf_destroy(vm);
    return 0;
}
