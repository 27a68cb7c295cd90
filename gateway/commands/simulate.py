"""``einblick simulate``: run a fleet of simulated devices against a broker.

    einblick simulate --profile owntracks --devices 20 --rate 1
    einblick simulate --profile shelly_gen2 --devices 5 --rate 2 --count 10 --qos 1

Logs go to stderr; the final counts (``published=… acked=… failed=…``) to stdout. Ctrl-C stops
the schedule, waits briefly for outstanding acknowledgements and prints the counts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from policies.profiles import PROFILES

if TYPE_CHECKING:
    from simulators.devices import SimulatedDevice

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="publish messages from simulated devices in real device formats",
        description="Publish messages from simulated devices in real device formats.",
    )
    p.add_argument("--profile", required=True, choices=sorted(PROFILES), help="device family")
    p.add_argument("--devices", type=int, default=1, help="number of devices (default 1)")
    p.add_argument("--rate", type=float, default=1.0, help="messages per second per device")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--username", help="MQTT user name for every device")
    p.add_argument("--password", help="MQTT password for every device")
    p.add_argument("--seed", type=int, default=7, help="same seed, same devices and values")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--count", type=int, help="stop after this many messages per device")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    # Here, not at the top: every command (the gateway's own process too) parses the same
    # command line, and only this one needs the simulators.
    from simulators.fleet import build_fleet
    from simulators.publisher import Credentials, Publisher

    if args.devices < 1:
        print("einblick simulate: --devices must be at least 1", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("einblick simulate: --rate must be greater than 0", file=sys.stderr)
        return 2
    fleet = build_fleet(args.profile, args.devices, args.seed)
    creds = Credentials(args.username, args.password) if args.username else None

    def credentials(index: int, device: SimulatedDevice) -> Credentials | None:
        return creds

    publisher = Publisher(
        fleet,
        host=args.host,
        port=args.port,
        rate=args.rate,
        qos=args.qos,
        count=args.count,
        duration=args.duration,
        credentials=credentials,
    )

    def interrupted(signum: int, frame: FrameType | None) -> None:
        print("einblick simulate: stopping", file=sys.stderr)
        publisher.stop()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupted) if main_thread else None
    print(
        f"einblick simulate: {args.devices} {args.profile} device(s) at {args.rate:g} msg/s each"
        f" -> {args.host}:{args.port} (QoS {args.qos}); Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        counts = publisher.run()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    print(f"published={counts.published} acked={counts.acked} failed={counts.failed}", flush=True)
    return 0 if counts.failed == 0 else 1
