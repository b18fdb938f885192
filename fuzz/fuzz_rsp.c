/*
 * fuzz_rsp.c: the shim's checks of a response from mwinsd.
 *
 * Input: an 11-byte header saying what the shim asked and how the answer came, then the message as the
 * kernel delivers it (cut to struct mw_rsp with the truncation flag set if longer, as recvmsg does).
 *   byte 0      bit 0: a descriptor came with it; bit 1: the kernel cut it (mw_recv_fd's *truncated);
 *               bit 2: the caller takes a descriptor (chan_call's rfd is not NULL); bit 3: it answers HELLO;
 *               bit 4: the receive failed (n = -ECONNRESET)
 *   bytes 1-2   the request's cmd      bytes 3-6  its sock_id      bytes 7-10  its req_id  (little-endian)
 *
 * What runs: chan_hello_check for HELLO; otherwise chan_rsp_frame_check, then (if the req_id is the
 * waiter's, as chan_read_one_locked matches it) chan_rsp_check: the functions of src/shim/rspcheck.c that
 * chan.c calls.  The bytes past what was received are poisoned.  A response that passes must keep the
 * promises of shim.h, checked here against a separate statement of them: chan_call's callers use ret,
 * sock_id and the descriptor without looking again.
 */
#include <errno.h>
#include <sanitizer/asan_interface.h>

#include "fuzz.h"
#include "shim.h"

#define HDR 11

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mw_req q = { .version = MW_PROTO_VERSION };
	struct mw_rsp *r;
	bool has_fd, trunc, fd_wanted, hello;
	ssize_t n;
	int ret;

	if (size < HDR)
		return 0;
	has_fd = data[0] & 1;
	trunc = data[0] & 2;
	fd_wanted = data[0] & 4;
	hello = data[0] & 8;
	q.cmd = fuzz_u16(data + 1);
	q.sock_id = fuzz_u32(data + 3);
	q.req_id = fuzz_u32(data + 7);
	data += HDR;
	size -= HDR;
	n = size < sizeof(*r) ? (ssize_t)size : (ssize_t)sizeof(*r);
	trunc |= size > sizeof(*r);

	r = malloc(sizeof(*r));
	FUZZ_CHECK(r);
	memcpy(r, data, (size_t)n);
	ASAN_POISON_MEMORY_REGION((char *)r + n, sizeof(*r) - (size_t)n);
	if (data[-HDR] & 16)
		n = -ECONNRESET;

	if (hello) {
		ret = chan_hello_check(r, n, trunc, has_fd);
		ASAN_UNPOISON_MEMORY_REGION(r, sizeof(*r));
		/* The caller returns ret as its errno (chan_warn prints strerror(-ret)): it must be one. */
		FUZZ_CHECK(ret <= 0 && ret >= -4095);
		if (!ret) {
			FUZZ_CHECK(n == (ssize_t)sizeof(*r) && !trunc && r->version == MW_PROTO_VERSION);
			FUZZ_CHECK(r->req_id == 0 && r->cmd == MW_CMD_HELLO && r->ret == 0 && has_fd);
			FUZZ_CHECK(r->u.hello.nslots >= 1 && r->u.hello.nslots <= MW_PAGE_MAX_SLOTS);
			/* The page the shim maps holds the header and every slot it will index. */
			FUZZ_CHECK(r->u.hello.page_size >= sizeof(struct mw_page_hdr) +
							       (uint64_t)r->u.hello.nslots * sizeof(struct mw_sock_rec));
		}
		free(r);
		return 0;
	}

	ret = chan_rsp_frame_check(r, n, trunc);
	ASAN_UNPOISON_MEMORY_REGION(r, sizeof(*r));
	FUZZ_CHECK(ret == 0 || ret == -EIO);
	if (ret) {
		free(r);
		return 0;
	}
	FUZZ_CHECK(n == (ssize_t)sizeof(*r) && !trunc && r->version == MW_PROTO_VERSION);
	if (r->req_id != q.req_id) {
		free(r); /* another thread's (or nobody's): chan_read_one_locked hands it on or drops it */
		return 0;
	}
	ret = chan_rsp_check(&q, r, has_fd, fd_wanted);
	FUZZ_CHECK(ret == 0 || ret == -EIO);
	if (!ret) {
		FUZZ_CHECK(r->cmd == q.cmd);
		if (q.cmd != MW_CMD_SOCKET && q.cmd != MW_CMD_IDENTIFY)
			FUZZ_CHECK(r->sock_id == q.sock_id);
		FUZZ_CHECK(r->ret <= 0 && r->ret >= -4095);
		FUZZ_CHECK(!has_fd || (fd_wanted && r->ret == 0));
	}
	free(r);
	return 0;
}
