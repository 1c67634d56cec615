#!/usr/bin/env python3
"""Prints a TCP port on 127.0.0.1 that is free now, drawn at random from [LOW, HIGH).

Usage: free-port.py LOW HIGH [COUNT]. With COUNT, prints the first port of COUNT consecutive
free ports. The scripts draw below the kernel's ephemeral range (32768-60999 on Linux), so a
port checked free here is not then taken by some process's outgoing connection before the
server binds it; two scripts drawing at once can still collide, so servers are started in a
retry loop where that matters.
"""
import random
import socket
import sys


def free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print("usage: free-port.py LOW HIGH [COUNT]", file=sys.stderr)
        return 2
    low, high = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    for _ in range(200):
        first = random.randrange(low, high - count + 1)
        if all(free(first + i) for i in range(count)):
            print(first)
            return 0
    print(f"free-port: no {count} free consecutive ports in [{low}, {high})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
