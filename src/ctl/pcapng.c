/*
 * pcapng.c: the pcapng writer behind `mwctl capture` (the contract is in
 * pcapng.h). Blocks are put together field by field in a small buffer, so
 * that no struct padding ever reaches the file, and written with stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "pcapng.h"

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du

#define OPT_ENDOFOPT   0
#define OPT_SHB_USERAPPL 4
#define OPT_IF_NAME    2
#define OPT_IF_TSRESOL 9

/* A block under construction: its fixed fields and options; packet data is written apart. */
struct block {
	uint8_t b[512];
	size_t len;
	int err;
};

static void put(struct block *bl, const void *p, size_t n)
{
	if (bl->len + n > sizeof(bl->b)) {
		bl->err = -E2BIG;
		return;
	}
	if (n)
		memcpy(bl->b + bl->len, p, n);
	bl->len += n;
}

static void put32(struct block *bl, uint32_t v)
{
	put(bl, &v, 4);
}

static void put16(struct block *bl, uint16_t v)
{
	put(bl, &v, 2);
}

/* An option: code, length, value padded to 32 bits. */
static void put_opt(struct block *bl, uint16_t code, const void *v, size_t n)
{
	static const uint8_t zero[4];

	if (n > 0xffff) {
		bl->err = -E2BIG;
		return;
	}
	put16(bl, code);
	put16(bl, (uint16_t)n);
	put(bl, v, n);
	put(bl, zero, (4 - n % 4) % 4);
}

static int w_fail(struct pcapng_writer *w, int err)
{
	if (!w->err)
		w->err = err;
	return err;
}

static int w_write(struct pcapng_writer *w, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, w->f) != n)
		return w_fail(w, errno ? -errno : -EIO);
	return 0;
}

/* Writes a block whose body (after type and length) is in bl, with no data part. */
static int block_write(struct pcapng_writer *w, uint32_t type, struct block *bl)
{
	uint32_t total = (uint32_t)bl->len + 12;

	if (bl->err)
		return w_fail(w, bl->err);
	if (w_write(w, &type, 4) || w_write(w, &total, 4) || w_write(w, bl->b, bl->len) ||
	    w_write(w, &total, 4))
		return w->err;
	return 0;
}

int pcapng_open(struct pcapng_writer *w, const char *path, const char *appl)
{
	struct block bl = { .len = 0 };
	int fd, err;

	memset(w, 0, sizeof(*w));
	if (!strcmp(path, "-"))
		fd = dup(STDOUT_FILENO);
	else
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	w->f = fdopen(fd, "w");
	if (!w->f) {
		err = -errno;
		close(fd);
		return err;
	}
	put32(&bl, BYTE_ORDER_MAGIC);
	put16(&bl, 1);                        /* major version */
	put16(&bl, 0);                        /* minor version */
	put32(&bl, 0xffffffffu);              /* section length -1: not known */
	put32(&bl, 0xffffffffu);
	if (appl)
		put_opt(&bl, OPT_SHB_USERAPPL, appl, strlen(appl));
	put_opt(&bl, OPT_ENDOFOPT, NULL, 0);
	err = block_write(w, BT_SHB, &bl);
	if (err) {
		fclose(w->f);
		w->f = NULL;
	}
	return err;
}

int pcapng_add_interface(struct pcapng_writer *w, uint16_t linktype, uint32_t snaplen, const char *name,
			 uint8_t tsresol, uint32_t *ifid)
{
	struct block bl = { .len = 0 };
	int err;

	if (w->n_ifaces >= sizeof(w->tsresol) || tsresol > 19)
		return w_fail(w, -EINVAL);
	put16(&bl, linktype);
	put16(&bl, 0);                        /* reserved */
	put32(&bl, snaplen);
	if (name)
		put_opt(&bl, OPT_IF_NAME, name, strnlen(name, 256));
	/* Microseconds are the default; say so only for another resolution. */
	if (tsresol != 6)
		put_opt(&bl, OPT_IF_TSRESOL, &tsresol, 1);
	put_opt(&bl, OPT_ENDOFOPT, NULL, 0);
	err = block_write(w, BT_IDB, &bl);
	if (err)
		return err;
	w->tsresol[w->n_ifaces] = tsresol;
	*ifid = w->n_ifaces++;
	return 0;
}

int pcapng_write_packet(struct pcapng_writer *w, uint32_t ifid, uint64_t ts, const void *data,
			uint32_t caplen, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t pad = (4 - caplen % 4) % 4, total = 32 + caplen + pad, v[7];

	if (ifid >= w->n_ifaces || caplen > PCAPNG_SNAPLEN_MAX || len < caplen)
		return w_fail(w, -EINVAL);
	v[0] = BT_EPB;
	v[1] = total;
	v[2] = ifid;
	v[3] = (uint32_t)(ts >> 32);
	v[4] = (uint32_t)ts;
	v[5] = caplen;
	v[6] = len;
	if (w_write(w, v, sizeof(v)) || w_write(w, data, caplen) || w_write(w, zero, pad) ||
	    w_write(w, &total, 4))
		return w->err;
	w->packets++;
	return 0;
}

int pcapng_close(struct pcapng_writer *w)
{
	int err = w->err;

	if (!w->f)
		return err ? err : -EBADF;
	if (fflush(w->f) == EOF && !err)
		err = errno ? -errno : -EIO;
	if (fclose(w->f) == EOF && !err)
		err = errno ? -errno : -EIO;
	w->f = NULL;
	return err;
}
