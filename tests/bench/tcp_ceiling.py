#!/usr/bin/env python3
"""The raw TCP loopback ceiling for the benchmark: sends a file over one 127.0.0.1 connection
with sendfile (zero-copy on the sending side, as nginx does) and receives it into a reused
256 KiB buffer that is thrown away (no file write). Prints the seconds from connect to the last
byte received, and fails unless exactly the file's size arrived."""
import os
import socket
import sys
import threading
import time

RECV_BUFFER = 256 * 1024


def main():
    path = sys.argv[1]
    size = os.path.getsize(path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def send():
        conn, _ = listener.accept()
        with conn, open(path, "rb") as f:
            conn.sendfile(f)

    sender = threading.Thread(target=send)
    sender.start()
    buf = bytearray(RECV_BUFFER)
    view = memoryview(buf)
    received = 0
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while True:
            n = sock.recv_into(view)
            if n == 0:
                break
            received += n
    elapsed = time.perf_counter() - start
    sender.join()
    listener.close()
    if received != size:
        sys.exit(f"tcp_ceiling: received {received} bytes, expected {size}")
    print(f"{elapsed:.6f}")


if __name__ == "__main__":
    main()
