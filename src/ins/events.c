/*
 * events.c: where events go (docs/telemetry.md, "Events"): the event stream (an AF_UNIX socket the registry
 * names in its `netflow` file, any number of consumers) and the event log (JSON lines, rotated by size).
 *
 * The data path never waits here.  A consumer that does not read has its events queued up to STREAM_QUEUE
 * bytes, then dropped and counted; once its queue has drained it gets one `dropped` event saying how many it
 * missed.  The log file is a regular file: write(2) to it does not wait for a reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ins.h"
#include "mwlib.h"

#define STREAM_QUEUE (4u << 20)

static struct list consumers = { &consumers, &consumers };
static int log_fd = -1;
static uint64_t log_size;

static int consumer_line(struct ins_conn *c, char *line, size_t len)
{
	(void)c;
	(void)line;
	(void)len;
	return 0; /* consumers have nothing to say; what they send is read and ignored */
}

static const struct ins_conn_ops stream_ops = {
	.name = "event stream",
	.operators_only = true, /* every program's flows, argv and uids: not for a protected program's eyes */
	.line = consumer_line,
	.max_out = STREAM_QUEUE,
	.max_line = 4096,
};

static int log_open(void)
{
	struct stat st;

	log_fd = open(ins.cfg.event_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log_fd < 0)
		return -errno;
	log_size = fstat(log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1, and a new FILE. */
static void log_rotate(void)
{
	char from[300], to[300];

	close(log_fd);
	log_fd = -1;
	for (uint32_t i = ins.cfg.event_log_keep; i > 0; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", ins.cfg.event_log);
		else
			snprintf(from, sizeof(from), "%s.%u", ins.cfg.event_log, i - 1);
		snprintf(to, sizeof(to), "%s.%u", ins.cfg.event_log, i);
		rename(from, to);
	}
	if (!ins.cfg.event_log_keep)
		unlink(ins.cfg.event_log);
	if (log_open() < 0)
		ins_log(0, "event log %s: %s; events go on to the stream only", ins.cfg.event_log, strerror(errno));
}

int events_init(void)
{
	char path[600];
	int err;

	snprintf(path, sizeof(path), "%s/events", ins.dir);
	err = conn_listen(path, &stream_ops, &consumers);
	if (err)
		return err;
	err = mw_file_write_atomic(ins.dir, "netflow", path, strlen(path));
	if (err)
		return err;
	if (ins.cfg.event_log[0]) {
		err = log_open();
		if (err) {
			ins_log(0, "event log %s: %s", ins.cfg.event_log, strerror(-err));
			return err;
		}
	}
	return 0;
}

bool events_wanted(void)
{
	return log_fd >= 0 || !list_empty(&consumers);
}

static void consumer_send(struct ins_conn *c, const char *line, size_t len)
{
	if (c->dropped && c->out_len == c->out_off) {
		/* It has read everything it was sent: tell it what it missed, before the next event. */
		char buf[128];
		int n = snprintf(buf, sizeof(buf), "{\"event\":\"dropped\",\"seq\":%llu,\"count\":%llu}\n",
				 (unsigned long long)ins.events_seq, (unsigned long long)c->dropped);

		c->dropped = 0;
		conn_write(c, buf, (size_t)n);
	}
	if (conn_write(c, line, len) == -ENOBUFS)
		ins.n.events_dropped++;
}

void events_emit(const char *type, json_t *obj)
{
	char *line;
	size_t len;
	json_t *ev;

	if (!obj)
		return;
	/* The event's own fields first, so that a reader of the log sees what it is at the start of a line. */
	ev = json_object();
	json_object_set_new(ev, "event", json_string(type));
	json_object_set_new(ev, "seq", json_integer((json_int_t)++ins.events_seq));
	json_object_set_new(ev, "time", json_real((double)ins_wall_ms(ins_now_ms()) / 1000.0));
	json_object_update(ev, obj);
	json_decref(obj);
	line = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(ev);
	if (!line)
		return;
	len = strlen(line);
	line[len++] = '\n'; /* json_dumps's NUL becomes the newline: the buffer has room for it */
	ins.n.events++;
	for (struct list *l = consumers.next, *n; l != &consumers; l = n) {
		n = l->next;
		consumer_send(container_of(l, struct ins_conn, link), line, len);
	}
	if (log_fd >= 0) {
		if (write(log_fd, line, len) != (ssize_t)len)
			ins.n.events_dropped++;
		log_size += len;
		if (ins.cfg.event_log_size && log_size >= ins.cfg.event_log_size)
			log_rotate();
	}
	free(line);
}
