/*
 * pcapng.h: a small writer of the pcapng capture file format (IETF draft
 * "PCAP Next Generation (pcapng) Capture File Format"), for `mwctl capture`:
 * libpcap 1.10 reads pcapng but writes only the old pcap format.
 *
 * What it writes, and nothing else: one section (a Section Header Block with
 * the writing application's name), then Interface Description Blocks (link
 * type, snap length, name, timestamp resolution), then Enhanced Packet Blocks
 * that refer to an interface by its index, in the order given. Every block is
 * in host byte order, which the section's byte-order magic declares (readers
 * handle both orders). The section length is written as -1 (unknown), so the
 * file can be a pipe, and a file cut short by a killed writer still reads up
 * to its last whole block.
 *
 * Usage:
 *
 *     struct pcapng_writer w;
 *     uint32_t ifid;
 *
 *     if (pcapng_open(&w, "out.pcapng", "mwctl") ||
 *         pcapng_add_interface(&w, 113, 262144, "any", 9, &ifid))
 *             ...;
 *     pcapng_write_packet(&w, ifid, ts_ns, data, caplen, len);
 *     err = pcapng_close(&w);       // the first error of any call, if one failed
 *
 * Limits: one section; at most PCAPNG_SNAPLEN_MAX bytes of packet data per
 * block; no packet options (flags, drop counts), no name resolution or
 * statistics blocks. Nothing is buffered beyond stdio: pcapng_close() must be
 * called for the tail to reach the file. Not thread-safe.
 */
#ifndef MWCOMMS_PCAPNG_H
#define MWCOMMS_PCAPNG_H

#include <stdint.h>
#include <stdio.h>

#define PCAPNG_SNAPLEN_MAX (16u << 20)

/* Link types (the pcap LINKTYPE_ values, which pcapng uses; not always the same as libpcap's DLT_). */
#define PCAPNG_LINKTYPE_ETHERNET   1
#define PCAPNG_LINKTYPE_RAW        101
#define PCAPNG_LINKTYPE_LINUX_SLL  113
#define PCAPNG_LINKTYPE_LINUX_SLL2 276

struct pcapng_writer {
	FILE *f;
	uint32_t n_ifaces;
	uint8_t tsresol[64];                  /* per interface: timestamps in units of 10^-tsresol s */
	uint64_t packets;                     /* Enhanced Packet Blocks written */
	int err;                              /* the first error (negative errno), sticky */
};

/*
 * Creates (or truncates) path with mode 0600, since captures hold other
 * people's payloads, and writes the Section Header Block naming appl as
 * shb_userappl. path "-" writes to stdout. Returns 0, or a negative errno
 * with nothing left open (the file may exist, empty).
 */
int pcapng_open(struct pcapng_writer *w, const char *path, const char *appl);

/*
 * Writes an Interface Description Block: linktype (a LINKTYPE_ value),
 * snaplen, the interface's name (NULL: none), and tsresol, the number of
 * decimal digits of a second the timestamps carry (6: microseconds, 9:
 * nanoseconds). The new interface's index goes to *ifid. At most 64
 * interfaces. Returns 0 or a negative errno (then also kept in w->err).
 */
int pcapng_add_interface(struct pcapng_writer *w, uint16_t linktype, uint32_t snaplen, const char *name,
			 uint8_t tsresol, uint32_t *ifid);

/*
 * Writes an Enhanced Packet Block for interface ifid: ts in the interface's
 * units since the epoch, caplen bytes of data (at most PCAPNG_SNAPLEN_MAX),
 * of a packet that was len bytes on the wire (len >= caplen). Returns 0 or a
 * negative errno (then also kept in w->err); -EINVAL for an unknown ifid or
 * impossible lengths, and then nothing is written.
 */
int pcapng_write_packet(struct pcapng_writer *w, uint32_t ifid, uint64_t ts, const void *data,
			uint32_t caplen, uint32_t len);

/*
 * Flushes and closes the file. Returns 0 when every call since pcapng_open()
 * succeeded and the data reached the file, else the first negative errno.
 * Must be called once after a successful pcapng_open(), whatever happened.
 */
int pcapng_close(struct pcapng_writer *w);

#endif /* MWCOMMS_PCAPNG_H */
