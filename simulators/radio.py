"""Simulated radio devices: LoRaWAN uplinks via The Things Stack, BLE via OpenMQTTGateway."""

from __future__ import annotations

import base64
import random
import struct

from simulators.behaviour import local_time, occupied
from simulators.devices import DeviceBase, hex_bytes, iso_utc, mac_address
from simulators.wire import JsonValue, dumps

__all__ = ["BleBeacon", "BleClimateSensor", "TtnSensor"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(rng: random.Random) -> str:
    return "01" + "".join(rng.choice(_CROCKFORD) for _ in range(24))


def _b64(rng: random.Random, nbytes: int) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(nbytes))).decode()


class TtnSensor(DeviceBase):
    """A cold-chain LoRaWAN sensor in a delivery depot, as The Things Stack v3 forwards it.

    The uplink carries the device's registered position (``locations.user``) — personal data
    when the device travels with a person — and the receiving gateway's identity.
    """

    def __init__(
        self,
        app: str,
        dev_id: str,
        seed: int,
        *,
        tenant: str = "ttn",
        position: tuple[float, float],
    ) -> None:
        super().__init__(dev_id, f"v3/{app}@{tenant}/devices/{dev_id}/up", seed)
        rng = self._rng
        self._app = app
        self._dev_eui = hex_bytes(rng, 8)
        self._dev_addr = hex_bytes(rng, 4)
        self._session_key = _b64(rng, 16)
        self._gateway = f"gw-{rng.choice(('depot', 'halle', 'dach'))}-{rng.randrange(1, 9)}"
        self._gateway_eui = hex_bytes(rng, 8)
        self._position = position
        self._altitude = rng.randrange(480, 560)
        self._temp = rng.uniform(2.0, 6.0)
        self._concentrator_us = rng.randrange(0, 2**32)

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, elapsed = self._tick(t)
        rng = self._rng
        self._temp += (4.0 - self._temp) * 0.1 + rng.gauss(0, 0.2)
        hour = local_time(t).hour
        lum = round(min(1.0, max(0.0, (0.8 if 6 <= hour < 20 else 0.05) + rng.gauss(0, 0.05))), 2)
        temperature = round(self._temp, 1)
        frm = base64.b64encode(struct.pack(">hB", int(temperature * 10), int(lum * 100))).decode()
        rx_time = iso_utc(t - 0.25, 3)
        timestamp = (self._concentrator_us + int(elapsed * 1e6)) % 2**32
        rssi = rng.randrange(-115, -40)
        payload: dict[str, JsonValue] = {
            "end_device_ids": {
                "device_id": self.device_id,
                "application_ids": {"application_id": self._app},
                "dev_eui": self._dev_eui,
                "join_eui": "0000000000000000",
                "dev_addr": self._dev_addr,
            },
            "correlation_ids": [
                f"as:up:{_ulid(rng)}",
                f"gs:conn:{_ulid(rng)}",
                f"gs:uplink:{_ulid(rng)}",
                f"ns:uplink:{_ulid(rng)}",
                f"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:{_ulid(rng)}",
            ],
            "received_at": iso_utc(t, 9),
            "uplink_message": {
                "session_key_id": self._session_key,
                "f_cnt": n + 1,
                "frm_payload": frm,
                "decoded_payload": {"temperature": float(temperature), "luminosity": lum},
                "rx_metadata": [
                    {
                        "gateway_ids": {"gateway_id": self._gateway, "eui": self._gateway_eui},
                        "time": rx_time,
                        "timestamp": timestamp,
                        "rssi": rssi,
                        "channel_rssi": rssi,
                        "snr": rng.randrange(-10, 11),
                        "uplink_token": _b64(rng, 26),
                        "channel_index": rng.randrange(0, 8),
                    }
                ],
                "settings": {
                    "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                    "data_rate_index": 5,
                    "coding_rate": "4/5",
                    "frequency": rng.choice(("868100000", "868300000", "868500000")),
                    "timestamp": timestamp,
                    "time": rx_time,
                },
                "consumed_airtime": "0.056576s",
                "locations": {
                    "user": {
                        "latitude": self._position[0],
                        "longitude": self._position[1],
                        "altitude": self._altitude,
                        "source": "SOURCE_REGISTRY",
                    }
                },
                "received_at": iso_utc(t - 0.02, 9),
            },
        }
        return self.topic, dumps(payload)


def _topic_mac(mac: str) -> str:
    return mac.replace(":", "").upper()


class BleBeacon(DeviceBase):
    """A badge beacon carried by a person, seen by an office gateway: strong signal when present."""

    def __init__(self, gateway: str, seed: int, *, mac: str | None = None) -> None:
        rng = random.Random(f"{seed}/ble-mac/{gateway}")
        mac = mac or mac_address(rng)
        super().__init__(mac, f"home/{gateway}/BTtoMQTT/{_topic_mac(mac)}", seed)
        self._servicedata = "fe" + hex_bytes(self._rng, 20).lower()

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        rng = self._rng
        rssi = rng.randrange(-78, -52) if occupied(t, rng) else rng.randrange(-99, -86)
        payload: dict[str, JsonValue] = {
            "id": self.device_id.lower(),
            "rssi": rssi,
            "distance": round(10 ** ((-59 - rssi) / 20), 5),
            "servicedata": self._servicedata,
        }
        return self.topic, dumps(payload)


class BleClimateSensor(DeviceBase):
    """A Mi Jia thermometer relayed over BLE; the firmware sends numbers as strings."""

    def __init__(self, gateway: str, seed: int, *, mac: str | None = None) -> None:
        rng = random.Random(f"{seed}/ble-mac/{gateway}/climate")
        mac = mac or mac_address(rng)
        super().__init__(mac, f"home/{gateway}/BTtoMQTT/{_topic_mac(mac)}", seed)
        self._temp = self._rng.uniform(19.0, 23.0)
        self._hum = self._rng.uniform(40.0, 55.0)

    def next_message(self, t: float) -> tuple[str, bytes]:
        self._tick(t)
        rng = self._rng
        self._temp += (21.5 - self._temp) * 0.05 + rng.gauss(0, 0.1)
        self._hum += (48.0 - self._hum) * 0.05 + rng.gauss(0, 0.3)
        tempc = round(self._temp, 1)
        payload: dict[str, JsonValue] = {
            "hum": f"{self._hum:.1f}",
            "tempc": f"{tempc:.1f}",
            "tempf": f"{tempc * 9 / 5 + 32:.2f}",
        }
        return self.topic, dumps(payload)
