"""Example policies for three archetypes, used by the demo and the end-to-end tests.

- ``bakery.yaml``: a bakery's ovens and the oven maker's maintenance cloud (``oven-maker``);
- ``vans.yaml``: delivery vans with OwnTracks phones and a logistics platform (``logistics``);
- ``building.yaml``: a tenant's occupancy sensors and energy meter and an energy provider
  (``energy-provider``).
- ``sparkplug/factory.yaml``: a factory's Sparkplug B edge node and industrial oven, released
  metric by metric to the oven maker (``oven-maker``). In a subdirectory so that ``einblick init``,
  the demo and the TUI keep the three archetypes; copy it into a gateway's ``policies/`` to use it.

Their topics do not overlap (``bakery/``, ``owntracks/``, ``zigbee2mqtt/``, ``tele/`` and ``spBv1.0/``), so
one gateway can run all three customers at once.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "RECIPIENTS", "example_path"]

EXAMPLES = ("bakery", "vans", "building")
RECIPIENTS = {
    "oven-maker": "Ofenbau Müller GmbH – Wartungscloud",
    "logistics": "TransLog Plattform",
    "energy-provider": "Stadtwerke Energie",
}


def example_path(name: str) -> Path:
    """The path of an example policy by name (``bakery``, ``vans``, ``building``)."""
    if name not in EXAMPLES:
        raise ValueError(f"no example {name!r}; examples: {', '.join(EXAMPLES)}")
    return Path(__file__).parent / f"{name}.yaml"
