/*
 * fuzz_rec.c: the shim's reading of the shared state page, which mwinsd writes and the shim must not trust.
 *
 * Input: an 8-byte header, then the records of the page (zero-filled if the input is shorter).
 *   byte 0      nslots - 1, modulo 8 (1 to 8 slots: enough for in- and out-of-range slot numbers)
 *   byte 1      bits 0-1: which epoch the table entry names (0 the current one, 1 none (0), 2 one not yet
 *               made); bit 2: the socket is AF_INET6 (else AF_INET)
 *   bytes 2-5   the table entry's sock_id (little-endian)
 *   bytes 6-7   the caller's addrlen for getsockname/getpeername (little-endian, up to 65535)
 *
 * What runs: a page of exactly that many records is attached with page_attach (src/shim/page.c), and the
 * entry is read with page_read, whose checks are page_rec_check; then everything else page.c offers for an
 * entry (page_take_error twice, page_ins_gone, the UDP destination and shut bits), and the record's
 * addresses go through what getsockname/getpeername do with them (mw_addr_to_sockaddr, then
 * mw_sockaddr_copy_out into a buffer of exactly addrlen bytes).  The seq of every record is made even: a
 * page kept locked is a matter of timing (page_read gives up after 100 ms), not of decoding, and would
 * only slow the fuzzer down.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "mwlib.h"
#include "shim.h"

#define HDR 8

static void addr_out(const struct mw_addr *a, int family, socklen_t buflen)
{
	/* What shim_addr_out (src/shim/opt.c) does: a record's address of family 0 is the socket's "any". */
	struct mw_addr any = { .family = (uint16_t)family };
	struct sockaddr_storage ss;
	socklen_t addrlen = buflen;
	struct sockaddr *buf;
	int len = mw_addr_to_sockaddr(a->family ? a : &any, &ss);

	if (len < 0)
		return; /* -EIO to the program */
	buf = malloc(buflen ? buflen : 1);
	FUZZ_CHECK(buf);
	mw_sockaddr_copy_out(buf, &addrlen, &ss, (socklen_t)len);
	FUZZ_CHECK(addrlen == (socklen_t)len);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t nslots, *consumed;
	uint64_t *dest;
	uint8_t *shut, *page, now, sel;
	struct mw_sock_rec rec = { 0 }, rec2;
	struct shim_fd e = { 0 };
	socklen_t addrlen;
	size_t len, body;
	bool valid;
	int ret, err;

	if (size < HDR)
		return 0;
	nslots = (uint32_t)(data[0] % 8) + 1;
	sel = data[1] & 3;
	e.family = (data[1] & 4) ? AF_INET6 : AF_INET;
	e.kind = SHIM_STREAM;
	e.sock_id = fuzz_u32(data + 2);
	addrlen = fuzz_u16(data + 6);
	data += HDR;
	size -= HDR;

	/* Exactly the page HELLO announced: a read past the last slot is an ASan report. */
	len = mw_page_size(nslots);
	body = len - sizeof(struct mw_page_hdr);
	page = calloc(1, len);
	consumed = calloc(nslots, sizeof(*consumed));
	dest = calloc(nslots, sizeof(*dest));
	shut = calloc(nslots, sizeof(*shut));
	FUZZ_CHECK(page && consumed && dest && shut);
	memcpy(page + sizeof(struct mw_page_hdr), data, size < body ? size : body);
	for (uint32_t i = 0; i < nslots; i++)
		page[sizeof(struct mw_page_hdr) + i * sizeof(struct mw_sock_rec)] &= (uint8_t)~1u; /* seq even */

	/* Only the epoch just attached, none, or one not yet made: the earlier ones point at pages freed by
	 * earlier runs (in the shim, old pages stay mapped for ever). */
	now = page_attach(page, nslots, consumed, dest, shut);
	e.epoch = sel == 1 ? 0 : sel == 2 ? (uint8_t)(now + 1) : now;
	valid = e.epoch == now && MW_SOCK_SLOT(e.sock_id) < nslots;

	ret = page_read(&e, &rec);
	FUZZ_CHECK(ret == 0 || ret == -ESTALE || ret == -EIO);
	if (!valid) {
		FUZZ_CHECK(ret == -EIO);
	} else {
		memcpy(&rec2, page + sizeof(struct mw_page_hdr) + MW_SOCK_SLOT(e.sock_id) * sizeof(rec), sizeof(rec2));
		FUZZ_CHECK(!memcmp(&rec, &rec2, sizeof(rec)));
		FUZZ_CHECK(page_rec_check(&rec2, e.sock_id) == ret);
	}
	if (!ret) {
		FUZZ_CHECK(rec.sock_id == e.sock_id);
		FUZZ_CHECK(rec.error >= 0 && rec.error <= 4095 && rec.state <= MW_SS_CLOSED);
		addr_out(&rec.local, e.family, addrlen);
		if (rec.state == MW_SS_CONNECTED && rec.peer.family)
			addr_out(&rec.peer, e.family, addrlen);
	}

	/* Each error once, as the kernel's sk_err. */
	err = page_take_error(&e);
	FUZZ_CHECK(err >= 0 && err <= 4095);
	FUZZ_CHECK(!err || (!ret && err == rec.error));
	FUZZ_CHECK(page_take_error(&e) == 0);

	(void)page_ins_gone(&e, false);
	(void)page_ins_gone(&e, true);
	page_dest_set(&e, &rec.peer);
	FUZZ_CHECK(page_dest_known(&e, &rec.peer) == valid);
	page_dest_set(&e, NULL);
	FUZZ_CHECK(!page_dest_known(&e, &rec.peer));
	page_mark_shut(&e, SHIM_SHUT_WR);
	FUZZ_CHECK(page_shut(&e) == (valid ? SHIM_SHUT_WR : 0));

	free(page);
	free(consumed);
	free(dest);
	free(shut);
	return 0;
}
