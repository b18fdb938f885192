/*
 * rspcheck.c: what the shim checks of a response from mwinsd before it uses any of it, as pure functions.
 * chan.c calls them on every response, and fuzz/fuzz_rsp.c feeds them hostile bytes: the shim runs exactly
 * the code that is fuzzed.  mwinsd is hostile (shim.h): nothing of a response that fails is used.
 */
#include <errno.h>

#include "shim.h"

int chan_rsp_frame_check(const struct mw_rsp *r, ssize_t n, bool trunc)
{
	/* The size first: a short message leaves the rest of *r unwritten. */
	if (n != (ssize_t)sizeof(*r) || trunc || r->version != MW_PROTO_VERSION)
		return -EIO;
	return 0;
}

int chan_rsp_check(const struct mw_req *q, const struct mw_rsp *r, bool has_fd, bool fd_wanted)
{
	/* req_id: chan.c hands a response only to the waiter whose id it carries; checked again here so that
	 * this function alone says what a usable response is. */
	if (r->req_id != q->req_id || r->cmd != q->cmd)
		return -EIO;
	/* SOCKET and IDENTIFY answer with a socket id of mwinsd's choosing; every other command echoes q's. */
	if (q->cmd != MW_CMD_SOCKET && q->cmd != MW_CMD_IDENTIFY && r->sock_id != q->sock_id)
		return -EIO;
	if (r->ret > 0 || r->ret < -4095)
		return -EIO;
	/* A descriptor only where the caller can take one, and never with an error. */
	if (has_fd && (!fd_wanted || r->ret < 0))
		return -EIO;
	return 0;
}

int chan_hello_check(const struct mw_rsp *r, ssize_t n, bool trunc, bool has_fd)
{
	if (n != (ssize_t)sizeof(*r) || trunc || r->version != MW_PROTO_VERSION || r->req_id != 0 ||
	    r->cmd != MW_CMD_HELLO)
		return -EIO;
	/* ret is 0 or an errno, which the caller passes on as its own (chan_warn prints strerror(-ret)). */
	if (r->ret > 0 || r->ret < -4095)
		return -EIO;
	if (r->ret < 0)
		return r->ret;
	if (!has_fd)
		return -EIO;
	if (r->u.hello.nslots == 0 || r->u.hello.nslots > MW_PAGE_MAX_SLOTS ||
	    r->u.hello.page_size != mw_page_size(r->u.hello.nslots))
		return -EIO;
	return 0;
}
