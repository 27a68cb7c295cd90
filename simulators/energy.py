"""Simulated energy devices: a Shelly plug, a Tasmota-read smart meter, an OpenEVSE wallbox.

Their readings are indirect personal data (a household's consumption shows its routine), which
is exactly why the gateway needs them to look real.
"""

from __future__ import annotations

from simulators.behaviour import household_power_w, local_time, occupied
from simulators.devices import DeviceBase, iso_local, mac_address
from simulators.wire import Fixed, JsonValue, dumps

__all__ = ["OpenEvseCharger", "ShellyPlug", "SmartMeter"]


class ShellyPlug(DeviceBase):
    """A Shelly Plus Plug S under a coffee machine (Gen2 RPC notifications).

    Every fifth message is a ``NotifyFullStatus`` with power and the energy counter; the others
    are ``NotifyStatus`` for the switch, toggled by a person at the button during office hours.
    """

    def __init__(self, shelly_id: str, seed: int) -> None:
        super().__init__(shelly_id, f"{shelly_id}/events/rpc", seed)
        rng = self._rng
        self._mac = shelly_id.rsplit("-", 1)[-1].upper()
        self._energy_wh = rng.uniform(1_000.0, 60_000.0)
        self._ip = f"192.168.178.{rng.randrange(20, 250)}"
        self._ssid = rng.choice(("WLAN", "Büro-WLAN", "FRITZ!Box 7530 QX"))
        self._boot_s = rng.randrange(10, 500_000)
        self._output = False
        self._last_t: float | None = None
        self._minutes = [0.0, 0.0, 0.0]

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, elapsed = self._tick(t)
        rng = self._rng
        power = (rng.uniform(900.0, 1400.0) if self._output else 0.0) if n else 0.0
        if self._last_t is not None:
            self._energy_wh += power * max(0.0, t - self._last_t) / 3600
        self._last_t = t
        self._minutes = [round(power / 60, 3), *self._minutes[:2]]
        if n % 5 == 0:
            return self.topic, self._full_status(t, elapsed, power)
        if occupied(t, rng):
            self._output = not self._output
        payload: dict[str, JsonValue] = {
            "src": self.device_id,
            "dst": f"{self.device_id}/events",
            "method": "NotifyStatus",
            "params": {
                "ts": Fixed(t, 2),
                "switch:0": {"id": 0, "output": self._output, "source": "button"},
            },
        }
        return self.topic, dumps(payload)

    def _full_status(self, t: float, elapsed: float, power: float) -> bytes:
        rng = self._rng
        voltage = round(rng.uniform(226.0, 233.0), 1)
        temp_c = round(30.0 + power / 200 + rng.uniform(0, 2), 1)
        payload: dict[str, JsonValue] = {
            "src": self.device_id,
            "dst": f"{self.device_id}/events",
            "method": "NotifyFullStatus",
            "params": {
                "ts": Fixed(t, 2),
                "ble": {},
                "cloud": {"connected": True},
                "mqtt": {"connected": True},
                "plugs_ui": {},
                "script:1": {
                    "id": 1,
                    "running": True,
                    "mem_used": 2786,
                    "mem_peak": 4130,
                    "mem_free": 22414,
                },
                "switch:0": {
                    "id": 0,
                    "source": "init" if not elapsed else "button",
                    "output": self._output,
                    "apower": round(power, 1),
                    "voltage": voltage,
                    "current": Fixed(power / voltage, 3),
                    "aenergy": {
                        "total": Fixed(self._energy_wh, 3),
                        "by_minute": [Fixed(m, 3) for m in self._minutes],
                        "minute_ts": int(t) // 60 * 60,
                    },
                    "temperature": {"tC": temp_c, "tF": round(temp_c * 9 / 5 + 32, 1)},
                },
                "sys": {
                    "mac": self._mac,
                    "restart_required": False,
                    "time": local_time(t).strftime("%H:%M"),
                    "unixtime": int(t),
                    "uptime": int(self._boot_s + elapsed),
                    "ram_size": 260920,
                    "ram_free": 120000 + rng.randrange(0, 5000),
                    "fs_size": 458752,
                    "fs_free": 135168,
                    "cfg_rev": 49,
                    "kvs_rev": 2,
                    "schedule_rev": 0,
                    "webhook_rev": 0,
                    "available_updates": {},
                },
                "wifi": {
                    "sta_ip": self._ip,
                    "status": "got ip",
                    "ssid": self._ssid,
                    "rssi": rng.randrange(-80, -50),
                },
                "ws": {"connected": False},
            },
        }
        return dumps(payload)


class SmartMeter(DeviceBase):
    """A household electricity meter read by a Tasmota teleinfo ESP; the counter only goes up.

    Alternates the ``ENERGY`` and the per-phase ``METER`` telemetry, both on
    ``<topic>/tele/SENSOR`` (this firmware's FullTopic puts the topic first).
    """

    def __init__(self, topic_name: str, seed: int) -> None:
        super().__init__(topic_name, f"{topic_name}/tele/SENSOR", seed)
        rng = self._rng
        self._total_kwh = rng.uniform(2_000.0, 15_000.0)
        self._today_kwh = 0.0
        self._yesterday_kwh = rng.uniform(4.0, 12.0)
        self._day: int | None = None
        self._start: str | None = None
        self._last_t: float | None = None
        self._ip = f"192.168.178.{rng.randrange(20, 250)}"
        self._mac = mac_address(rng)

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, _ = self._tick(t)
        rng = self._rng
        power = household_power_w(t, rng)
        day = local_time(t).toordinal()
        if self._start is None:
            self._start = iso_local(t)
        if self._day is not None and day != self._day:
            self._yesterday_kwh, self._today_kwh = self._today_kwh, 0.0
        self._day = day
        period_wh = 0.0 if self._last_t is None else power * max(0.0, t - self._last_t) / 3600
        self._last_t = t
        self._total_kwh += period_wh / 1000
        self._today_kwh += period_wh / 1000
        volts = 230 + rng.randrange(-5, 6)
        amps = power / volts
        payload: dict[str, JsonValue]
        if n % 2 == 0:
            payload = {
                "Time": iso_local(t),
                "ENERGY": {
                    "TotalStartTime": self._start,
                    "Total": Fixed(self._total_kwh, 3),
                    "Yesterday": Fixed(self._yesterday_kwh, 3),
                    "Today": Fixed(self._today_kwh, 3),
                    "Period": round(period_wh),
                    "Power": round(power),
                    "Current": Fixed(amps, 3),
                },
                "IP": self._ip,
                "MAC": self._mac,
            }
        else:
            payload = {
                "Time": iso_local(t),
                "METER": {
                    "PH": 1,
                    "ISUB": 45,
                    "PSUB": 9000,
                    "PMAX": 8910,
                    "U1": volts,
                    "P1": round(power),
                    "W1": round(power),
                    "I1": Fixed(amps, 1),
                    "C1": Fixed(1.0, 2),
                    "P": round(power),
                    "W": round(power),
                    "I": Fixed(amps, 1),
                },
            }
        return self.topic, dumps(payload)


class OpenEvseCharger(DeviceBase):
    """An OpenEVSE wallbox at a home: announces itself, then reports one status value per message.

    The car arrives in the evening and charges at 16 A until it is full. Status values are plain
    text on ``openevse-<suffix>/<key>`` (the firmware's default base topic).
    """

    _KEYS = ("amp", "pilot", "wh", "temp", "state")

    def __init__(self, device_hex: str, seed: int) -> None:
        suffix = device_hex[-4:]
        super().__init__(device_hex, f"openevse/announce/{suffix}", seed)
        rng = self._rng
        self._suffix = suffix
        self._ip = f"192.168.1.{rng.randrange(20, 250)}"
        self._wh = rng.uniform(100_000.0, 3_000_000.0)
        self._arrive_h = rng.uniform(17.0, 19.5)
        self._need_kwh = rng.uniform(8.0, 30.0)
        self._session_kwh = 0.0
        self._last_t: float | None = None

    @property
    def base_topic(self) -> str:
        return f"openevse-{self._suffix}"

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, _ = self._tick(t)
        if n == 0:
            announce: dict[str, JsonValue] = {
                "state": "connected",
                "id": self.device_id,
                "name": self.base_topic,
                "mqtt": self.base_topic,
                "http": f"http://{self._ip}/",
            }
            return self.topic, dumps(announce)
        now = local_time(t)
        hour = now.hour + now.minute / 60
        plugged = hour >= self._arrive_h or hour < 6.5
        if not plugged:
            self._session_kwh = 0.0
        charging = plugged and self._session_kwh < self._need_kwh
        amps = 16.0 if charging else 0.0
        if self._last_t is not None:
            wh = 230.0 * amps * max(0.0, t - self._last_t) / 3600
            self._wh += wh
            self._session_kwh += wh / 1000
        self._last_t = t
        key = self._KEYS[(n - 1) % len(self._KEYS)]
        value = {
            "amp": str(int(amps * 1000)),
            "pilot": "16" if plugged else "32",
            "wh": f"{self._wh:.0f}",
            "temp": str(250 + int(amps * 8) + self._rng.randrange(0, 10)),
            "state": "3" if charging else ("254" if plugged else "1"),
        }[key]
        return f"{self.base_topic}/{key}", value.encode()
