/*
 * meshwire's batched UDP driver: recvmmsg/sendmmsg on one non-blocking socket, driven by a
 * libuv poll handle on Node's own event loop (no thread, no extra wake-up).
 *
 * Why: node:dgram costs one syscall, one JS callback, one Buffer and one rinfo object per
 * datagram; at 1.4 KB per datagram that is a third of the transport's CPU. Here a batch of
 * up to `slots` datagrams costs one syscall and one JS call each way.
 *
 * Memory is owned by JS: four Buffers handed over at open() are the receive slots, the
 * receive metadata, the send slots and the send metadata. Each metadata record is
 * META_BYTES long: the peer's sockaddr (sockaddr_in or sockaddr_in6) at 0, the datagram
 * length (u32, host order) at META_LEN_OFFSET. JS reads and writes them directly.
 *
 * The API (all functions throw an Error with `code` = errno name on failure):
 *   open(ipv6, address, port, sockBufBytes, recvData, recvMeta, slotBytes,
 *        sendData, sendMeta, sendSlotBytes, counters, onReceive, onWritable) -> handle
 *   localAddress(handle) -> [address, port]
 *   startReceive(handle)           onReceive(count) is called per batch
 *   send(handle, start, end) -> next index not sent (end when all left); errors counted
 *   awaitWritable(handle)          onWritable() once the socket can take datagrams again
 *   close(handle, onClosed?)       onClosed() once the fd is closed (the port is free)
 *   pton(address, port, ipv6Socket) -> Buffer of META_BYTES with the sockaddr
 *   ntop(meta, offset) -> address string of the sockaddr at meta[offset]
 * counters (Float64Array(6)): [0] send errors, [1] receive errors, [2] truncated datagrams,
 * [3] sendmmsg calls, [4] recvmmsg calls that returned datagrams, [5] datagrams that left
 * inside a GSO send (see below).
 *
 * GSO (UDP_SEGMENT, Linux 4.18+): a run of queued datagrams to one destination, all of one
 * length but the last (which may be shorter), leaves as one message the kernel cuts into
 * datagrams below the UDP/IP layer (in the NIC, or in software just before it). Loopback
 * measurements on our 2-core VM (bench/transport/udp_syscalls.c): the kernel's send path
 * costs ~2.5 us per datagram through sendmmsg, whatever the batch (a syscall is ~0.17 us of
 * it), and ~1.0 us per datagram in runs of 44 with UDP_SEGMENT. On the wire nothing changes:
 * the same datagrams, the same sizes. When the kernel or the route refuses it, the socket
 * falls back to one datagram per message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include "napi_util.h"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define META_BYTES 32
#define META_LEN_OFFSET 28
#define MAX_SLOTS 1024
/* Receive batches per poll wake-up before yielding to the rest of the loop. One: the
 * transport then acknowledges and sends between batches (four batches per wake-up delayed
 * ACKs by up to a millisecond and gained nothing measurable). The poll is level-triggered,
 * so what is left is read on the next turn. */
#define MAX_BATCHES_PER_WAKEUP 1
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
/* Datagrams per GSO message: the kernel's UDP_MAX_SEGMENTS is 64 (128 since 6.9) and the
 * whole message must fit an IP packet (64 KiB): 43 datagrams of 1472 bytes. */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 63000
#define N_COUNTERS 6

typedef struct {
  napi_env env;
  int fd;
  int closed;
  int want_writable;
  int receiving;
  int poll_closed; /* the struct is freed when both the poll handle is closed ... */
  int finalized;   /* ... and the JS object is collected, whichever comes last */
  int teardown;    /* the env is being torn down: call no more JS */
  uv_poll_t poll;
  napi_async_context async_ctx;
  napi_ref self_ref; /* keeps the handle object (and so the Buffers) alive while open */
  napi_ref on_receive;
  napi_ref on_writable;
  napi_ref on_closed;
  napi_ref buffers[5];
  uint8_t *recv_data, *recv_meta, *send_data, *send_meta;
  size_t slot_bytes, recv_slots, send_slot_bytes, send_slots;
  double *counters;
  struct mmsghdr recv_msgs[MAX_SLOTS];
  struct iovec recv_iov[MAX_SLOTS];
  struct mmsghdr send_msgs[MAX_SLOTS];
  struct iovec send_iov[MAX_SLOTS];
  int gso; /* UDP_SEGMENT usable: probed at open, cleared when the kernel refuses it */
  /* one message per GSO run: its first slot, its datagram count, its control message */
  struct mmsghdr run_msgs[MAX_SLOTS];
  uint32_t run_first[MAX_SLOTS + 1];
  uint32_t run_len[MAX_SLOTS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } run_cmsg[MAX_SLOTS];
} udp_socket;

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value code, msg, error;
  char text[160];
  const char *name = err == EADDRINUSE      ? "EADDRINUSE"
                     : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                     : err == EACCES        ? "EACCES"
                     : err == EINVAL        ? "EINVAL"
                     : err == EAFNOSUPPORT  ? "EAFNOSUPPORT"
                                            : "EIO";
  snprintf(text, sizeof text, "%s %s (%s)", syscall, name, strerror(err));
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      const napi_extended_error_info *info_;                                         \
      napi_get_last_error_info(env, &info_);                                         \
      bool pending_;                                                                 \
      napi_is_exception_pending(env, &pending_);                                     \
      if (!pending_)                                                                 \
        napi_throw_error(env, NULL, info_->error_message ? info_->error_message : #call); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

static udp_socket *unwrap(napi_env env, napi_value obj) {
  udp_socket *s = NULL;
  if (napi_unwrap(env, obj, (void **)&s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, NULL, "not a udp_batch handle");
    return NULL;
  }
  return s;
}

/* Fills a sockaddr (in a META_BYTES record) from an address literal; 0 or -1. */
static int to_sockaddr(const char *address, int port, int ipv6_socket, uint8_t *out) {
  memset(out, 0, META_BYTES);
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, address, &a4) == 1) {
    if (!ipv6_socket) {
      struct sockaddr_in *sin = (struct sockaddr_in *)out;
      sin->sin_family = AF_INET;
      sin->sin_port = htons((uint16_t)port);
      sin->sin_addr = a4;
      return 0;
    }
    /* an IPv6 (dual-stack) socket reaches IPv4 peers through a v4-mapped address */
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sin6->sin6_addr.s6_addr[12], &a4, 4);
    return 0;
  }
  if (ipv6_socket && inet_pton(AF_INET6, address, &a6) == 1) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr = a6;
    return 0;
  }
  return -1;
}

static void call_js(udp_socket *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value fn, recv, result;
  napi_open_handle_scope(env, &scope);
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &recv); /* make_callback needs an object receiver */
  /* make_callback, not call_function: it drains process.nextTick and microtasks afterwards,
   * which is where the transport flushes the sends this batch produced */
  napi_status st = napi_make_callback(env, s->async_ctx, recv, fn, argc, argv, &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void update_poll(udp_socket *s);

static void on_poll(uv_poll_t *handle, int status, int events) {
  udp_socket *s = (udp_socket *)handle->data;
  if (s->closed) return;
  if (status < 0) {
    s->counters[1] += 1;
    return;
  }
  if ((events & UV_WRITABLE) && s->want_writable) {
    s->want_writable = 0;
    update_poll(s);
    call_js(s, s->on_writable, 0, NULL);
    if (s->closed) return;
  }
  if (!(events & UV_READABLE) || !s->receiving) return;
  for (int batch = 0; batch < MAX_BATCHES_PER_WAKEUP && !s->closed && s->receiving; batch++) {
    for (size_t i = 0; i < s->recv_slots; i++) s->recv_msgs[i].msg_hdr.msg_namelen = 28;
    int n = recvmmsg(s->fd, s->recv_msgs, (unsigned)s->recv_slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) s->counters[1] += 1;
      return;
    }
    if (n == 0) return;
    s->counters[4] += 1;
    for (int i = 0; i < n; i++) {
      uint32_t len = s->recv_msgs[i].msg_len;
      if (s->recv_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) s->counters[2] += 1;
      memcpy(s->recv_meta + (size_t)i * META_BYTES + META_LEN_OFFSET, &len, 4);
    }
    napi_handle_scope scope;
    napi_value count;
    napi_open_handle_scope(s->env, &scope);
    napi_create_uint32(s->env, (uint32_t)n, &count);
    call_js(s, s->on_receive, 1, &count);
    napi_close_handle_scope(s->env, scope);
    if ((size_t)n < s->recv_slots) return; /* the queue is drained */
  }
}

static void update_poll(udp_socket *s) {
  if (s->closed) return;
  int events = (s->receiving ? UV_READABLE : 0) | (s->want_writable ? UV_WRITABLE : 0);
  if (events)
    uv_poll_start(&s->poll, events, on_poll);
  else
    uv_poll_stop(&s->poll);
}

static void release_refs(udp_socket *s) {
  napi_env env = s->env;
  napi_ref *refs[] = {&s->on_receive, &s->on_writable, &s->on_closed, &s->self_ref,
                      &s->buffers[0], &s->buffers[1], &s->buffers[2], &s->buffers[3],
                      &s->buffers[4]};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (s->async_ctx) napi_async_destroy(env, s->async_ctx);
  s->async_ctx = NULL;
}

/* The fd is closed here, not in close(): libuv unregisters it from epoll on the way, and a
 * number closed earlier could already belong to a new socket. */
static void on_poll_closed(uv_handle_t *handle) {
  udp_socket *s = (udp_socket *)handle->data;
  close(s->fd);
  s->fd = -1;
  s->poll_closed = 1;
  if (s->finalized) {
    free(s);
    return;
  }
  if (s->teardown) return; /* the env is going away: no more JS */
  if (s->on_closed) call_js(s, s->on_closed, 0, NULL);
  release_refs(s); /* drops self_ref: the handle object may now be collected */
}

static void do_close(udp_socket *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static void env_cleanup(void *arg) {
  udp_socket *s = (udp_socket *)arg;
  s->teardown = 1;
  do_close(s);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_socket *s = (udp_socket *)data;
  /* reached after on_poll_closed dropped self_ref, or at env teardown */
  napi_remove_env_cleanup_hook(env, env_cleanup, s);
  s->finalized = 1;
  if (s->poll_closed) free(s);
  else {
    s->teardown = 1;
    do_close(s);
  }
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 13) {
    napi_throw_type_error(env, NULL, "open: 13 arguments expected");
    return NULL;
  }
  bool ipv6;
  char address[64];
  size_t addr_len;
  int32_t port, sockbuf, slot_bytes, send_slot_bytes;
  CHECK(napi_get_value_bool(env, argv[0], &ipv6));
  CHECK(napi_get_value_string_utf8(env, argv[1], address, sizeof address, &addr_len));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &sockbuf));
  CHECK(napi_get_value_int32(env, argv[6], &slot_bytes));
  CHECK(napi_get_value_int32(env, argv[9], &send_slot_bytes));
  uint8_t *recv_data, *recv_meta, *send_data, *send_meta;
  size_t recv_data_len, recv_meta_len, send_data_len, send_meta_len;
  if (get_buffer(env, argv[4], &recv_data, &recv_data_len) ||
      get_buffer(env, argv[5], &recv_meta, &recv_meta_len) ||
      get_buffer(env, argv[7], &send_data, &send_data_len) ||
      get_buffer(env, argv[8], &send_meta, &send_meta_len)) {
    napi_throw_type_error(env, NULL, "open: receive/send areas must be Buffers");
    return NULL;
  }
  napi_typedarray_type ta_type;
  size_t ta_len;
  void *counters;
  if (napi_get_typedarray_info(env, argv[10], &ta_type, &ta_len, &counters, NULL, NULL) !=
          napi_ok ||
      ta_type != napi_float64_array || ta_len < N_COUNTERS) {
    napi_throw_type_error(env, NULL, "open: counters must be a Float64Array(6)");
    return NULL;
  }
  if (slot_bytes <= 0 || send_slot_bytes <= 0 || port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "open: bad slot size or port");
    return NULL;
  }
  size_t recv_slots = recv_data_len / (size_t)slot_bytes;
  size_t send_slots = send_data_len / (size_t)send_slot_bytes;
  if (recv_slots == 0 || recv_slots > MAX_SLOTS || send_slots == 0 || send_slots > MAX_SLOTS ||
      recv_meta_len < recv_slots * META_BYTES || send_meta_len < send_slots * META_BYTES) {
    napi_throw_range_error(env, NULL, "open: slot areas do not match (1..1024 slots each)");
    return NULL;
  }

  uint8_t bind_addr[META_BYTES];
  if (to_sockaddr(address, port, ipv6, bind_addr) != 0) {
    napi_throw_type_error(env, NULL, "open: the bind address must be an IP literal");
    return NULL;
  }
  int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (ipv6) {
    int off = 0; /* dual stack, like node:dgram's udp6 */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  socklen_t bind_len = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)bind_addr, bind_len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  /* best effort: the kernel caps these at net.core.[rw]mem_max */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);

  udp_socket *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->recv_data = recv_data;
  s->recv_meta = recv_meta;
  s->send_data = send_data;
  s->send_meta = send_meta;
  s->slot_bytes = (size_t)slot_bytes;
  s->recv_slots = recv_slots;
  s->send_slot_bytes = (size_t)send_slot_bytes;
  s->send_slots = send_slots;
  s->counters = (double *)counters;
  /* gso_size 0 on the socket changes nothing; it only tells whether the kernel knows it */
  int no_gso = 0;
  s->gso = setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &no_gso, sizeof no_gso) == 0;
  for (size_t i = 0; i < recv_slots; i++) {
    s->recv_iov[i].iov_base = recv_data + i * s->slot_bytes;
    s->recv_iov[i].iov_len = s->slot_bytes;
    s->recv_msgs[i].msg_hdr.msg_name = recv_meta + i * META_BYTES;
    s->recv_msgs[i].msg_hdr.msg_iov = &s->recv_iov[i];
    s->recv_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (size_t i = 0; i < send_slots; i++) {
    s->send_iov[i].iov_base = send_data + i * s->send_slot_bytes;
    s->send_msgs[i].msg_hdr.msg_name = send_meta + i * META_BYTES;
    s->send_msgs[i].msg_hdr.msg_iov = &s->send_iov[i];
    s->send_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "uv_poll_init failed");
    return NULL;
  }
  s->poll.data = s;

  napi_value resource_name;
  CHECK(napi_create_object(env, &self));
  CHECK(napi_create_string_utf8(env, "meshwire.udp", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, self, resource_name, &s->async_ctx));
  CHECK(napi_create_reference(env, argv[11], 1, &s->on_receive));
  CHECK(napi_create_reference(env, argv[12], 1, &s->on_writable));
  int buf_args[5] = {4, 5, 7, 8, 10};
  for (int i = 0; i < 5; i++) CHECK(napi_create_reference(env, argv[buf_args[i]], 1, &s->buffers[i]));
  CHECK(napi_wrap(env, self, s, finalize, NULL, NULL));
  CHECK(napi_create_reference(env, self, 1, &s->self_ref));
  napi_add_env_cleanup_hook(env, env_cleanup, s);
  return self;
}

static napi_value js_local_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, addr, port;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket *s = unwrap(env, argv[0]);
  if (!s) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (s->closed || getsockname(s->fd, (struct sockaddr *)&ss, &len) != 0)
    return throw_errno(env, s->closed ? EINVAL : errno, "getsockname");
  char text[INET6_ADDRSTRLEN];
  int p;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    p = ntohs(sin6->sin6_port);
  } else {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    p = ntohs(sin->sin_port);
  }
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &addr));
  CHECK(napi_create_int32(env, p, &port));
  CHECK(napi_set_element(env, result, 0, addr));
  CHECK(napi_set_element(env, result, 1, port));
  return result;
}

/* The open handle that is a call's only argument, or NULL (closed, or a TypeError thrown). */
static udp_socket *open_handle_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  udp_socket *s = unwrap(env, argv[0]);
  return s && !s->closed ? s : NULL;
}

static napi_value js_start_receive(napi_env env, napi_callback_info info) {
  udp_socket *s = open_handle_arg(env, info);
  if (s) {
    s->receiving = 1;
    update_poll(s);
  }
  return NULL;
}

/* Groups slots [start, end) into messages (s->run_*): with GSO, a run of datagrams to one
 * destination, all as long as the first but the last (no longer); else one per message.
 * run_first[runs] is end. Returns the message count. */
static uint32_t build_runs(udp_socket *s, uint32_t start, uint32_t end, uint32_t plain_until) {
  uint32_t runs = 0;
  uint32_t i = start;
  while (i < end) {
    uint32_t seg = (uint32_t)s->send_iov[i].iov_len;
    uint32_t k = 1;
    size_t total = seg;
    if (s->gso && i >= plain_until && seg > 0) {
      socklen_t namelen = s->send_msgs[i].msg_hdr.msg_namelen;
      while (i + k < end && k < GSO_MAX_SEGMENTS && s->send_iov[i + k - 1].iov_len == seg &&
             s->send_iov[i + k].iov_len <= seg && s->send_iov[i + k].iov_len > 0 &&
             total + s->send_iov[i + k].iov_len <= GSO_MAX_BYTES &&
             s->send_msgs[i + k].msg_hdr.msg_namelen == namelen &&
             memcmp(s->send_msgs[i + k].msg_hdr.msg_name, s->send_msgs[i].msg_hdr.msg_name,
                    namelen) == 0) {
        total += s->send_iov[i + k].iov_len;
        k++;
      }
    }
    struct msghdr *h = &s->run_msgs[runs].msg_hdr;
    *h = s->send_msgs[i].msg_hdr;
    h->msg_iov = &s->send_iov[i];
    h->msg_iovlen = k;
    h->msg_flags = 0;
    if (k > 1) {
      h->msg_control = s->run_cmsg[runs].buf;
      h->msg_controllen = sizeof s->run_cmsg[runs].buf;
      struct cmsghdr *cm = CMSG_FIRSTHDR(h);
      cm->cmsg_level = IPPROTO_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gso_size = (uint16_t)seg;
      memcpy(CMSG_DATA(cm), &gso_size, sizeof gso_size);
    } else {
      h->msg_control = NULL;
      h->msg_controllen = 0;
    }
    s->run_first[runs] = i;
    s->run_len[runs] = k;
    runs++;
    i += k;
  }
  s->run_first[runs] = end;
  return runs;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket *s = unwrap(env, argv[0]);
  if (!s) return NULL;
  uint32_t start, end;
  CHECK(napi_get_value_uint32(env, argv[1], &start));
  CHECK(napi_get_value_uint32(env, argv[2], &end));
  if (end > s->send_slots || start > end) {
    napi_throw_range_error(env, NULL, "send: slot range out of bounds");
    return NULL;
  }
  for (uint32_t i = start; i < end; i++) {
    uint8_t *meta = s->send_meta + (size_t)i * META_BYTES;
    uint32_t len;
    memcpy(&len, meta + META_LEN_OFFSET, 4);
    s->send_iov[i].iov_len = len <= s->send_slot_bytes ? len : s->send_slot_bytes;
    s->send_msgs[i].msg_hdr.msg_namelen = ((struct sockaddr *)meta)->sa_family == AF_INET6
                                              ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  }
  /* slots before plain_until leave one per message (a GSO run of them was refused) */
  uint32_t plain_until = start;
  while (!s->closed && start < end) {
    uint32_t runs = build_runs(s, start, end, plain_until);
    int n = sendmmsg(s->fd, s->run_msgs, runs, MSG_DONTWAIT);
    s->counters[3] += 1;
    if (n > 0) {
      for (int r = 0; r < n; r++)
        if (s->run_len[r] > 1) s->counters[5] += s->run_len[r];
      start = s->run_first[n];
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break; /* the caller keeps the rest and awaits writability */
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (s->run_len[0] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE ||
                                     errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
      /* the kernel or the route refused the GSO run: EIO (no checksum offload on the
       * device), EINVAL/EMSGSIZE (datagram larger than the path MTU), ENOPROTOOPT or
       * EOPNOTSUPP: these datagrams go one by one; the socket stops trying GSO unless it was
       * the size (another destination may take it) */
      if (errno != EINVAL && errno != EMSGSIZE) s->gso = 0;
      plain_until = s->run_first[1];
    } else {
      /* these datagrams cannot leave (unreachable, refused, filtered): count them, go on */
      s->counters[0] += s->run_len[0];
      start = s->run_first[1];
    }
  }
  CHECK(napi_create_uint32(env, start, &result));
  return result;
}

static napi_value js_await_writable(napi_env env, napi_callback_info info) {
  udp_socket *s = open_handle_arg(env, info);
  if (s) {
    s->want_writable = 1;
    update_poll(s);
  }
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket *s = unwrap(env, argv[0]);
  if (!s) return NULL;
  if (s->closed) return NULL;
  if (argc > 1) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[1], &t));
    if (t == napi_function) CHECK(napi_create_reference(env, argv[1], 1, &s->on_closed));
  }
  do_close(s);
  return NULL;
}

static napi_value js_pton(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char address[64];
  size_t len;
  int32_t port;
  bool ipv6;
  CHECK(napi_get_value_string_utf8(env, argv[0], address, sizeof address, &len));
  CHECK(napi_get_value_int32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &ipv6));
  void *data;
  CHECK(napi_create_buffer(env, META_BYTES, &data, &result));
  if (port < 0 || port > 65535 || to_sockaddr(address, port, ipv6, data) != 0) {
    napi_get_null(env, &result); /* not an IP literal this socket can reach */
  }
  return result;
}

static napi_value js_ntop(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *meta;
  size_t meta_len;
  uint32_t offset;
  if (get_buffer(env, argv[0], &meta, &meta_len)) {
    napi_throw_type_error(env, NULL, "ntop: Buffer expected");
    return NULL;
  }
  CHECK(napi_get_value_uint32(env, argv[1], &offset));
  if ((size_t)offset + META_BYTES > meta_len) {
    napi_throw_range_error(env, NULL, "ntop: offset out of bounds");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN] = "";
  struct sockaddr *sa = (struct sockaddr *)(meta + offset);
  if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
  else if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"localAddress", NULL, js_local_address, NULL, NULL, NULL, napi_default, NULL},
      {"startReceive", NULL, js_start_receive, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"awaitWritable", NULL, js_await_writable, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"pton", NULL, js_pton, NULL, NULL, NULL, napi_default, NULL},
      {"ntop", NULL, js_ntop, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value metaBytes;
  napi_create_uint32(env, META_BYTES, &metaBytes);
  napi_set_named_property(env, exports, "META_BYTES", metaBytes);
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
