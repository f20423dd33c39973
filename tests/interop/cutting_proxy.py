#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 for the interop suite: forwards to an upstream port and, for the
first N connections, cuts the connection after a given number of bytes from upstream. Lets a
real server (nginx) be interrupted mid-body, so the client's resume (Range + If-Range) is
exercised against the server's real range handling. Exits after --lifetime seconds."""
import argparse
import socket
import threading
import time


def relay(client, upstream_port, cut_after):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    sent = [0]

    def pump_up():
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threading.Thread(target=pump_up, daemon=True).start()
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            if cut_after is not None and sent[0] + len(data) >= cut_after:
                client.sendall(data[: cut_after - sent[0]])
                break
            client.sendall(data)
            sent[0] += len(data)
    except OSError:
        pass
    finally:
        # shutdown() first: close() alone would not end a recv() blocked in the other thread,
        # and the connection would stay open.
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--cut-after", type=int, required=True)
    p.add_argument("--cut-connections", type=int, default=1)
    p.add_argument("--lifetime", type=float, default=120)
    p.add_argument("--ready-file", help="created once listening (probing the port would use up a cut)")
    a = p.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", a.listen))
    server.listen(16)
    server.settimeout(0.5)
    if a.ready_file:
        open(a.ready_file, "w").close()
    deadline = time.monotonic() + a.lifetime
    accepted = 0
    while time.monotonic() < deadline:
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        cut = a.cut_after if accepted < a.cut_connections else None
        accepted += 1
        threading.Thread(target=relay, args=(client, a.upstream, cut), daemon=True).start()


if __name__ == "__main__":
    main()
