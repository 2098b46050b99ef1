/* The few kernel types the drop tracer reads, as CO-RE-relocatable
 * declarations: only the fields used, matched by name against the running
 * kernel's BTF at load time (so no vmlinux.h is needed). */
#ifndef BPFNB_DROPS_TYPES_H
#define BPFNB_DROPS_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed short __s16;
typedef signed long long __s64;
typedef __u32 __be32;
typedef __u64 __be64;
typedef signed int __s32;
typedef __u16 __be16;
typedef __u32 __wsum;

enum bpf_map_type { BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4 };
enum { BPF_F_CURRENT_CPU = 0xffffffffULL };

struct net_device {
	char name[16];
	int ifindex;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned int len;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
	__u16 mac_header;
	unsigned char *head;
	unsigned char *data;
} __attribute__((preserve_access_index));

/* Only the name matters: the kernel BTF's enum gives the values. */
enum skb_drop_reason { SKB_DROP_REASON_NOT_SPECIFIED = 2 };

#endif
