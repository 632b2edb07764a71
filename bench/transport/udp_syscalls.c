/*
 * What one datagram costs the kernel here, by the way it is sent (make bench-udp-syscalls;
 * docs/benchmarks.md, "Transport"): a bare syscall (getppid), then per 1472-byte datagram
 * over loopback sendto + recvfrom one at a time, sendmmsg + recvmmsg in batches of
 * 1/8/32/64, and sendmsg with UDP_SEGMENT (GSO, one call per up to 44 datagrams) when the
 * kernel takes it. One process, one thread, sender and receiver sockets on 127.0.0.1: a
 * loopback send runs the receive path too (softirq on the sending CPU), so "send ns" is the
 * whole trip into the receiver's queue and "recv ns" is taking it out.
 *
 *   make bench-udp-syscalls ARGS=1     (or: build/udp_syscalls [seconds per case])
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define DGRAM 1472
#define MAX_BATCH 64

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int sock_at(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 4 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0) {
    perror("bind");
    exit(1);
  }
  socklen_t len = sizeof *addr;
  getsockname(fd, (struct sockaddr *)addr, &len);
  return fd;
}

static char data[MAX_BATCH][DGRAM + 1];
static char big[MAX_BATCH * DGRAM];

/* batch 0: sendto/recvfrom one datagram at a time; gso: one UDP_SEGMENT send of `batch` */
static void run(const char *name, int batch, int gso, double seconds) {
  struct sockaddr_in ra, sa;
  int rx = sock_at(&ra), tx = sock_at(&sa);
  int n = batch > 0 ? batch : 1;
  struct mmsghdr msgs[MAX_BATCH], rmsgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in from[MAX_BATCH];
  for (int i = 0; i < n; i++) {
    iov[i].iov_base = data[i];
    iov[i].iov_len = DGRAM;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &ra;
    msgs[i].msg_hdr.msg_namelen = sizeof ra;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    rmsgs[i] = msgs[i]; /* receive into the same slots, the sender's address apart */
    rmsgs[i].msg_hdr.msg_name = &from[i];
  }
  if (gso) {
    int seg = DGRAM;
    if (setsockopt(tx, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg) != 0) {
      printf("%-22s not supported (%s)\n", name, strerror(errno));
      close(rx);
      close(tx);
      return;
    }
  }
  double send_ns = 0, recv_ns = 0, t_end = now_ns() + seconds * 1e9;
  long datagrams = 0, send_calls = 0, recv_calls = 0, lost = 0;
  while (now_ns() < t_end) {
    for (int rep = 0; rep < 16; rep++) {
      double t0 = now_ns();
      if (gso) {
        struct iovec one = {big, (size_t)n * DGRAM};
        struct msghdr m = {.msg_name = &ra, .msg_namelen = sizeof ra, .msg_iov = &one, .msg_iovlen = 1};
        if (sendmsg(tx, &m, 0) < 0) { perror("sendmsg gso"); exit(1); }
        send_calls++;
      } else if (batch == 0) {
        if (sendto(tx, data[0], DGRAM, 0, (struct sockaddr *)&ra, sizeof ra) < 0) { perror("sendto"); exit(1); }
        send_calls++;
      } else {
        int sent = 0;
        while (sent < n) {
          int k = sendmmsg(tx, msgs + sent, n - sent, 0);
          if (k < 0) { perror("sendmmsg"); exit(1); }
          sent += k;
          send_calls++;
        }
      }
      double t1 = now_ns();
      int got = 0;
      while (got < n) {
        int k;
        if (batch == 0) {
          k = recvfrom(rx, data[0], DGRAM + 1, MSG_DONTWAIT, NULL, NULL) < 0 ? -1 : 1;
        } else {
          for (int i = 0; i < n; i++) rmsgs[i].msg_hdr.msg_namelen = sizeof from[i];
          k = recvmmsg(rx, rmsgs, n - got, MSG_DONTWAIT, NULL);
        }
        recv_calls++;
        if (k < 0) { lost += n - got; break; }
        got += k;
      }
      recv_ns += now_ns() - t1;
      send_ns += t1 - t0;
      datagrams += got;
    }
  }
  printf("%-22s send %6.0f ns/dgram  recv %6.0f ns/dgram  total %6.0f ns/dgram  %5.1f dgram/send call  lost %ld\n",
         name, send_ns / datagrams, recv_ns / datagrams, (send_ns + recv_ns) / datagrams,
         (double)datagrams / send_calls, lost);
  (void)recv_calls;
  close(rx);
  close(tx);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  long k = 0;
  double t0 = now_ns(), t_end = t0 + seconds * 1e9 / 2;
  while (now_ns() < t_end) {
    for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
    k += 1000;
  }
  printf("bare syscall (getppid)  %.0f ns\n", (now_ns() - t0) / k);
  run("sendto/recvfrom", 0, 0, seconds);
  run("sendmmsg/recvmmsg 1", 1, 0, seconds);
  run("sendmmsg/recvmmsg 8", 8, 0, seconds);
  run("sendmmsg/recvmmsg 32", 32, 0, seconds);
  run("sendmmsg/recvmmsg 64", 64, 0, seconds);
  run("UDP_SEGMENT 8 + recvmmsg", 8, 1, seconds);
  run("UDP_SEGMENT 44 + recvmmsg", 44, 1, seconds);
  return 0;
}
