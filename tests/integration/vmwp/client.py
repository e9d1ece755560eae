#!/usr/bin/env python3
# Test client for the worker's sockets.
#   client.py control SOCK LINE...   send each request line, print every line received until
#                                    the worker closes the socket (or 20 s pass)
#   client.py console SOCK OUT       copy console output to OUT until the worker closes it
import socket
import sys
import time


def connect(path):
    for _ in range(1500):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.01)
    sys.exit("cannot connect to " + path)


def drain(s, out):
    s.settimeout(20)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out.write(d)
            out.flush()
    except socket.timeout:
        pass


def main():
    mode, path = sys.argv[1], sys.argv[2]
    s = connect(path)
    if mode == "control":
        for line in sys.argv[3:]:
            s.sendall(line.encode() + b"\n")
        drain(s, sys.stdout.buffer)
    else:
        with open(sys.argv[3], "wb") as f:
            drain(s, f)


main()
