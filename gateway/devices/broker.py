"""The managed device-side broker: a real Mosquitto, configured and supervised by Einblick.

Einblick writes Mosquitto's configuration, password file and ACL from its device registry, so a
device may publish only under its own topics and only the gateway may read everything. The ACL
and password file are reloaded with SIGHUP, without a restart, when devices are added or removed.

Mosquitto keeps the gateway's persistent session: while the gateway is down or has stopped taking
messages (outbox full), devices' QoS 1 messages queue in the broker, and its persistence file keeps
them across a broker restart.

Identity is bound to credentials on every listener (``use_username_as_clientid``): whatever client
id a device sends, Mosquitto replaces it with the device's username (``customer.device``; on the
certificate listener the certificate's common name, ``use_identity_as_username``). A device can
therefore never take over the gateway's session (``einblick-gateway``, a name without a dot that no
device username can have) nor another device's: the only login that can replace a session is one
with the same credentials.

Queue limits (``max_queued_messages``/``max_queued_bytes``) are global in Mosquitto 2.0: one value
for every client. They must let the gateway's own persistent session hold a long backlog (hours of
an upstream outage behind a full outbox), so they cannot be small. Devices are kept from queueing
for themselves not by those limits but by the ACL: a device has no read right at all (so a
subscription receives nothing and no message is ever queued for it), except on command topics the
installer configured for it, which only the gateway may publish to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from gateway.backoff import Backoff
from gateway.devices.broker_files import AclRule, MosquittoSettings, write_files
from gateway.devices.broker_log import BoundedLog, drain_log, rotated
from gateway.devices.ports import check_port_free, listening
from gateway.errors import BrokerError

__all__ = [
    "BrokerKilled",
    "Mosquitto",
    "find_mosquitto",
    "wait_for_port",
]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "Mosquitto is not installed. Install it with\n"
    "    sudo apt-get install mosquitto mosquitto-clients\n"
    "or point Einblick at an existing broker with 'broker: {mode: external, host: …, port: …}'."
)


# supervise(): how many failed starts in a row end the gateway, and how long a broker must run
# for its exit to count as a new fault rather than the same one again.
MAX_START_FAILURES = 5
STABLE_S = 10.0
# Exit codes of a Mosquitto stopped by a signal from outside (asyncio reports -signum). These are
# never a reason to give up; an exit of its own (a bad port, a broken file) is.
_KILLED_FROM_OUTSIDE = frozenset({-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT})


class BrokerKilled(BrokerError):
    """Mosquitto was stopped by a signal from outside while it was starting."""


def find_mosquitto(explicit: Path | None = None) -> Path:
    if explicit is not None:
        if not explicit.exists():
            raise BrokerError(f"broker.mosquitto: {explicit} does not exist. {INSTALL_HINT}")
        return explicit
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise BrokerError(INSTALL_HINT)
    return Path(found)


class Mosquitto:
    """A Mosquitto process we started, restarted and stopped."""

    def __init__(
        self,
        settings: MosquittoSettings,
        *,
        binary: Path | None = None,
        on_log: Callable[[list[str]], None] | None = None,
        log_debug: bool = False,
    ) -> None:
        self.settings = settings
        self.binary = find_mosquitto(binary)
        # With ``on_log`` Mosquitto logs at debug level into a pipe that a reader thread drains:
        # refusals such as "Denied PUBLISH" exist only at debug level, whose per-message lines
        # must not reach the disk. The thread (not the event loop) reads, so a busy loop can
        # never block the broker on a full pipe; lines that matter go to ``on_log`` on the loop.
        self.on_log = on_log
        self.log_debug = log_debug and on_log is not None
        self._restart_lock = asyncio.Lock()
        self.process: asyncio.subprocess.Process | None = None
        # A Mosquitto a killed gateway left running, which we took over rather than restart:
        # devices stay connected through a gateway crash, and its queue is intact.
        self.adopted_pid: int | None = None
        self.restarts = 0

    @property
    def conf_path(self) -> Path:
        return self.settings.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.settings.directory / "mosquitto.log"

    def write_files(self, rules: Iterable[AclRule]) -> None:
        write_files(
            self.settings,
            rules,
            self.conf_path,
            information=self.on_log is not None,
            debug=self.log_debug,
        )

    @property
    def running(self) -> bool:
        if self.adopted_pid is not None:
            return _alive(self.adopted_pid)
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        if self.adopted_pid is not None:
            return self.adopted_pid
        return self.process.pid if self.process is not None else None

    async def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self.adopted_pid = None
        orphan = self._orphan()
        if orphan is not None:
            log.warning("taking over Mosquitto (pid %d) left running by an earlier gateway", orphan)
            self.adopted_pid = orphan
            self._read_log_of(orphan)
            self.reload()  # it re-reads the password file and ACL we just wrote
            try:
                for port in self._ports():
                    await wait_for_port(self.settings.listen, port, timeout, adopted=orphan)
                return
            except BrokerKilled as exc:
                # Stopped meanwhile (by whoever stopped the earlier gateway, or on its own):
                # start one of our own, as when there was none to take over.
                log.warning("%s; starting a device broker of our own", exc)
                self.adopted_pid = None
        for port in self._ports():
            check_port_free(self.settings.listen, port)
        # Mosquitto writes into a pipe and a thread of ours writes the file, bounded, whether or
        # not anyone reads the lines (``on_log``): Mosquitto itself never rotates a log file.
        log_file = BoundedLog(self.log_path, self.settings.log_max_bytes)
        read_end, write_end = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(self.binary),
                "-c",
                str(self.conf_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
                # Its pid file and persistence (queued messages: personal data) owner-only,
                # whatever umask the gateway was started with.
                umask=0o077,
            )
        except BaseException:
            os.close(read_end)
            log_file.close()
            raise
        finally:
            os.close(write_end)
        self._drain(read_end, log_file, self.process.pid)
        try:
            # Every listener, not only the first: Mosquitto opens them one after the other, and
            # a device connecting to the TLS port in between would be refused as if the broker
            # were down (seen right after a restart for a revoked certificate).
            for port in self._ports():
                await wait_for_port(self.settings.listen, port, timeout, self.process)
        except BrokerKilled:
            await self.stop()
            raise
        except BrokerError:
            await self.stop()
            raise BrokerError(
                f"Mosquitto did not start listening on {self.settings.listen} port(s) "
                f"{', '.join(map(str, self._ports()))}; "
                f"its log says:\n{self.tail_log()}"
            ) from None

    def _ports(self) -> list[int]:
        tls = self.settings.tls_port
        return [self.settings.port] if tls is None else [self.settings.port, tls]

    def _read_log_of(self, pid: int) -> None:
        """Read the log of a broker taken over, as of one started here.

        It writes into the pipe of the gateway that started it (stdout and stderr both), whose
        reading end died with that gateway: unread, its log file would stay as it was and no
        refusal would be counted until it restarted. The pipe is opened again through /proc (the
        same user may). What it wrote while no gateway read it is lost."""
        try:
            out, err = (os.stat(f"/proc/{pid}/fd/{n}") for n in (1, 2))
            if not stat.S_ISFIFO(err.st_mode) or out.st_ino != err.st_ino:
                raise OSError(0, "its output is not the pipe a gateway gives it")
            # Not blocking on the open: a pipe without a writer left would wait for one.
            fd = os.open(f"/proc/{pid}/fd/2", os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            if _alive(pid):  # else it exited: ``start`` says so and starts one of its own
                self._unread(pid, exc)
            return
        try:
            os.set_blocking(fd, True)
            log_file = BoundedLog(self.log_path, self.settings.log_max_bytes)
        except OSError as exc:
            os.close(fd)
            self._unread(pid, exc)
            return
        self._drain(fd, log_file, pid)

    def _unread(self, pid: int, exc: OSError) -> None:
        log.warning(
            "cannot read the log of the device broker taken over (Mosquitto pid %d: %s): until "
            "it restarts, refusals are not counted in `einblick status` and %s stays as it is. "
            "Restart it with `kill %d` (the gateway starts its own at once; devices reconnect)",
            pid,
            exc.strerror,
            self.log_path,
            pid,
        )

    def _drain(self, fd: int, log_file: BoundedLog, pid: int) -> None:
        """A thread reads the broker's output from ``fd`` until it exits (``drain_log``)."""
        threading.Thread(
            target=drain_log,
            args=(fd, log_file, self.on_log, asyncio.get_running_loop()),
            name=f"mosquitto-log-{pid}",
            daemon=True,
        ).start()

    def _orphan(self) -> int | None:
        """The pid of a live Mosquitto running our configuration, if a killed gateway left one."""
        try:
            pid = int((self.settings.directory / "mosquitto.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if b"mosquitto" not in cmdline or str(self.conf_path).encode() not in cmdline:
            return None  # the pid was reused by something else
        return pid if _alive(pid) else None

    def tail_log(self, lines: int = 8) -> str:
        texts = []
        for path in (rotated(self.log_path), self.log_path):  # just rotated: the end is in .1
            with contextlib.suppress(OSError):
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        if not texts:
            return "(no log)"
        return "\n".join("".join(texts).splitlines()[-lines:]) or "(empty log)"

    def _signal(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def reload(self) -> None:
        """Re-read the password file and ACL without dropping connections.

        Mosquitto 2.0 re-checks connected clients against the new password file on SIGHUP
        (``mosquitto_security_apply``): a client whose password no longer matches, or whose user
        is gone, is disconnected at once. Certificate clients are not re-checked, and the CRL is
        read only at start: revoking a certificate needs ``restart``.
        """
        self._signal(signal.SIGHUP)

    def save(self) -> None:
        """Write the persistence file now (SIGUSR1), not at the next autosave.

        Called once the gateway's session has subscribed: until the file holds that subscription,
        a Mosquitto killed with -9 comes back without it, and whatever devices publish before the
        gateway has subscribed again is acknowledged to them and dropped — no subscriber.
        """
        self._signal(signal.SIGUSR1)

    async def restart(self) -> None:
        """Stop and start again: every session is closed, and each client must authenticate
        anew against the current password file, ACL and CRL. Persistent sessions and queued
        QoS 1 messages survive through the persistence file, written at the clean stop."""
        async with self._restart_lock:
            await self.stop()
            self.restarts += 1
            await self.start()

    def kill(self) -> None:
        """kill -9, for fault tests."""
        self._signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.adopted_pid is not None:
            pid, self.adopted_pid = self.adopted_pid, None
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(pid):
                    return
                await asyncio.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def supervise(self, max_failures: int = MAX_START_FAILURES) -> None:
        """Restart Mosquitto whenever it dies, with backoff; runs until cancelled.

        A broker that cannot start, or exits within ``STABLE_S`` of starting, ``max_failures``
        times in a row will not start by trying again (a port another process holds, a broken
        certificate): raises BrokerError with the reason, and the gateway exits non-zero
        instead of restarting it forever."""
        backoff = Backoff(0.5, 30.0)
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            while self.adopted_pid is not None and _alive(self.adopted_pid):  # noqa: ASYNC110 - no event exists for a process that is not our child
                await asyncio.sleep(0.5)  # not our child: we can only watch it
            if self.adopted_pid is not None:
                log.error(
                    "the adopted Mosquitto (pid %d) exited; starting a new one", self.adopted_pid
                )
                self.adopted_pid = None
                self.restarts += 1
            if self.process is None or self.process.returncode is not None:
                try:
                    async with self._restart_lock:
                        await self.start()
                except BrokerKilled as exc:
                    # Killed from outside while starting: no sign that it cannot start.
                    failures = 0
                    backoff.reset()
                    log.error("Mosquitto was killed while starting (%s); starting it again", exc)
                    continue
                except BrokerError as exc:
                    failures += 1
                    if failures >= max_failures:
                        raise BrokerError(
                            f"the device broker could not be started {failures} times in a row; "
                            f"giving up. Last error: {exc}"
                        ) from exc
                    delay = backoff.next_delay()
                    log.error("%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    continue
            assert self.process is not None
            process = self.process
            started = loop.time()
            code = await process.wait()
            async with self._restart_lock:
                if self.process is not process:
                    continue  # restarted on purpose (``restart``), already running again
            self.restarts += 1
            if code in _KILLED_FROM_OUTSIDE:
                # Killed by someone (an operator, the OOM killer): it ran, so this says nothing
                # about whether it can run. Restart at once, however often it happens.
                failures = 0
                backoff.reset()
            elif loop.time() - started < STABLE_S:
                failures += 1
            else:
                failures = 0  # it ran well: a fresh fault, not the same one again
                backoff.reset()
            if failures >= max_failures:
                raise BrokerError(
                    f"Mosquitto exited (code {code}) within {STABLE_S:.0f} s of starting, "
                    f"{failures} times in a row; giving up. Its log says:\n{self.tail_log()}"
                )
            delay = backoff.next_delay()
            log.error(
                "Mosquitto exited with code %s; restarting in %.1f s. Its log says:\n%s",
                code,
                delay,
                self.tail_log(),
            )
            await asyncio.sleep(delay)


def _alive(pid: int) -> bool:
    """True for a running process; a zombie (dead, not yet reaped) counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return fields.rpartition(")")[2].split()[0] != "Z"


async def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    process: asyncio.subprocess.Process | None = None,
    *,
    adopted: int | None = None,
) -> None:
    """Wait until ``port`` listens: as /proc shows, without connecting, since a probe connection
    to a TLS port would be logged, and counted, as a refused TLS client (ports.py,
    ``listening``); by a connection only where /proc/net/tcp cannot be read. ``process`` (our
    child) or ``adopted`` (the pid of a broker taken over) must stay alive meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if process is not None and process.returncode is not None:
            if process.returncode in _KILLED_FROM_OUTSIDE:
                raise BrokerKilled(f"the process was killed (code {process.returncode})")
            raise BrokerError(f"the process exited with code {process.returncode}")
        if adopted is not None and not _alive(adopted):
            # Not a reason to give up: ``start`` goes on to start a broker of its own.
            raise BrokerKilled(
                f"the Mosquitto left running by an earlier gateway (pid {adopted}) exited "
                "while it was being taken over"
            )
        seen = listening(host, port)
        if seen is not None:
            if seen:
                return
            await asyncio.sleep(0.05)
            continue
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout:.0f} s")
