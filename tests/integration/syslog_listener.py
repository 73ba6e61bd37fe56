#!/usr/bin/python3
"""Receive syslog datagrams on a unix socket for a few seconds and print
them, one per line. usage: syslog_listener.py SOCKET SECONDS"""
import os
import socket
import sys
import time

path, seconds = sys.argv[1], float(sys.argv[2])
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("ready", flush=True)
end = time.time() + seconds
s.settimeout(0.2)
try:
    while time.time() < end:
        try:
            print(s.recv(65536).decode(errors="replace"), flush=True)
        except socket.timeout:
            pass
finally:
    os.unlink(path)
