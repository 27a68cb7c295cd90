"""A witness served over HTTPS (``--tls-cert``/``--tls-key``), and a gateway that checks its
certificate against the CA it was given (``ca_file``) — and refuses one it cannot check."""

from __future__ import annotations

from pathlib import Path

from gateway.devices.tls import CertificateAuthority, TlsFiles
from tests.gateway.harness import running_gateway
from tests.witness.conftest import WitnessFactory
from tests.witness.test_submitter import (
    BAKERY,
    DEVICES,
    caught_up,
    follow_all,
    send,
    until,
    witness_status,
)


async def test_cosigning_over_https_with_the_witness_ca(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    files = TlsFiles(tmp_path / "tls")
    CertificateAuthority.create(files, instance="witness-host")
    witness = await witnesses(
        extra=("--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key))
    )
    assert witness.url.startswith("https://127.0.0.1:")
    for label, ca_line in (("trusted", f"    ca_file: {files.ca_cert}\n"), ("untrusted", "")):
        entry = (
            f"einblick_config: 1\nwitnesses:\n  - name: verband\n    url: {witness.url}\n"
            f"    vkey: {witness.vkey}\n    retry_max_s: 1\n{ca_line}"
        )
        async with running_gateway(
            tmp_path / label,
            {"bakery.yaml": BAKERY},
            DEVICES,
            config_edits={"einblick_config: 1\n": entry},
        ) as h:
            await send(h, 2)
            await h.cloud.wait_for(2)
            if label == "trusted":
                await follow_all(h, witness)
                await send(h, 1, start=2)
                await until(lambda: caught_up(h), lambda: witness_status(h))
            else:
                # The system's trust store does not know the witness's CA: never cosigned,
                # and status says why.
                await until(
                    lambda: "certificate verify failed" in str(witness_status(h).last_error),
                    lambda: witness_status(h),
                )
                assert witness_status(h).reachable is False
                assert not caught_up(h)


async def test_a_witness_ca_file_that_will_not_load_never_stops_forwarding(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    missing = tmp_path / "no-such-ca.crt"
    entry = (
        f"einblick_config: 1\nwitnesses:\n  - name: verband\n    url: {witness.url}\n"
        f"    vkey: {witness.vkey}\n    retry_max_s: 1\n    ca_file: {missing}\n"
    )
    async with running_gateway(
        tmp_path / "edge",
        {"bakery.yaml": BAKERY},
        DEVICES,
        config_edits={"einblick_config: 1\n": entry},
    ) as h:
        await send(h, 3)
        await h.cloud.wait_for(3)
        await until(
            lambda: "cannot load the CA file" in str(witness_status(h).last_error),
            lambda: witness_status(h),
        )
        await send(h, 2, start=3)
        await h.cloud.wait_for(5)
        assert not h.task.done()
