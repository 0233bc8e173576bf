#!/usr/bin/env python3
"""A fixed-delay line for pull.sh, where the kernel has no netem (CONFIG_NET_SCH_NETEM).

  delayline.py --queue N --delay SECONDS

Binds netfilter queue N (nfnetlink_queue, spoken over a raw netlink socket: no library
needed) and lets every packet queued there through DELAY seconds after it arrived, in the
order they came (one batch verdict, "accept every id up to this one", per wake-up; packet
ids are sequential, so a notification lost to a full socket buffer still gets its packet
through with the next batch). Only packet metadata is copied to user space. pull.sh runs
it in the registry's network namespace, at real-time priority (chrt -f) so that a busy
CPU does not add to the delay, with an iptables rule that queues the packets arriving
from the host: the requests and ACKs of the clients, a few thousand packets a second at
most. Prints "ready" on stdout once bound; runs until killed.
"""

import argparse
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1


def attr(kind, payload):
    a = struct.pack("=HH", 4 + len(payload), kind) + payload
    return a + b"\0" * (-len(a) % 4)


def message(msg, queue, attrs, flags=NLM_F_REQUEST, seq=0):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, seq, 0) + body


def messages(data):
    """(type, payload after nlmsghdr) of each netlink message in DATA."""
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        yield kind, data[off + 16:off + length]
        off += (length + 3) & ~3


def attrs(payload):
    off = 0
    while off + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, off)
        if length < 4:
            break
        yield kind & 0x3FFF, payload[off + 4:off + length]
        off += (length + 3) & ~3


def configure(sock, queue):
    """Bind QUEUE, metadata only, a long queue; fail on any error the kernel answers."""
    requests = [
        [attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET))],
        [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))],
        [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 100000))],
    ]
    for seq, a in enumerate(requests, 1):
        sock.send(message(NFQNL_MSG_CONFIG, queue, a, NLM_F_REQUEST | NLM_F_ACK, seq))
        for kind, payload in messages(sock.recv(65536)):
            if kind == NLMSG_ERROR:
                err = struct.unpack_from("=i", payload)[0]
                if err:
                    raise SystemExit(f"delayline: nfqueue config {seq} failed: {os.strerror(-err)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queue", type=int, default=0)
    p.add_argument("--delay", type=float, required=True, help="seconds")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    configure(sock, args.queue)
    sock.setblocking(False)
    print("ready", flush=True)
    due = collections.deque()   # (time to let it go, packet id), in arrival order
    delay = args.delay
    clock = time.monotonic
    while True:
        timeout = max(0.0, due[0][0] - clock()) if due else None
        readable, _, _ = select.select([sock], [], [], timeout)
        if readable:
            while True:
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    break
                except OSError as e:   # ENOBUFS: notifications lost; the batch verdicts cover them
                    print(f"delayline: {e}", file=sys.stderr)
                    continue
                now = clock()
                for kind, payload in messages(data):
                    if kind & 0xFF != NFQNL_MSG_PACKET:
                        continue
                    for a, value in attrs(payload[4:]):
                        if a == NFQA_PACKET_HDR:
                            due.append((now + delay, struct.unpack_from("!I", value)[0]))
        now = clock()
        last = None
        while due and due[0][0] <= now:
            last = due.popleft()[1]
        if last is not None:
            verdict = attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, last))
            while True:
                try:
                    sock.send(message(NFQNL_MSG_VERDICT_BATCH, args.queue, [verdict]))
                    break
                except BlockingIOError:
                    select.select([], [sock], [])


if __name__ == "__main__":
    main()
