#!/usr/bin/python3
"""nats_pub.py: a minimal NATS client (the text protocol, stdlib only) for the e2e tests:
  nats_pub.py PORT pub SUBJECT [HEADER=VALUE ...] < body   JetStream publish, prints the ack
  nats_pub.py PORT api SUBJECT [JSON]                      a $JS.API request, prints the reply
Every command is a request with a reply inbox, so the answer says the server stored it."""
import json
import socket
import sys


def main():
    port, cmd, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()  # INFO
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
              b"SUB _INBOX.e2e 1\r\n")
    subj = subject.encode()
    if cmd == "pub":
        body = sys.stdin.buffer.read()
        hdr = b"NATS/1.0\r\n" + b"".join(
            (h.split("=", 1)[0] + ": " + h.split("=", 1)[1]).encode() + b"\r\n"
            for h in sys.argv[4:]) + b"\r\n"
        s.sendall(b"HPUB %s _INBOX.e2e %d %d\r\n%s%s\r\n"
                  % (subj, len(hdr), len(hdr) + len(body), hdr, body))
    else:
        body = (sys.argv[4] if len(sys.argv) > 4 else "").encode()
        s.sendall(b"PUB %s _INBOX.e2e %d\r\n%s\r\n" % (subj, len(body), body))
    while True:
        line = f.readline()
        if not line:
            sys.exit("nats_pub: connection closed")
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")
        elif line.startswith(b"-ERR"):
            sys.exit("nats_pub: " + line.decode().strip())
        elif line.startswith(b"MSG") or line.startswith(b"HMSG"):
            parts = line.split()
            data = f.read(int(parts[-1]) + 2)[:-2]
            if line.startswith(b"HMSG"):
                data = data[int(parts[-2]):]
            reply = json.loads(data or b"{}")
            print(json.dumps(reply))
            sys.exit(1 if "error" in reply else 0)


if __name__ == "__main__":
    main()
