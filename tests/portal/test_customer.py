"""``einblick customer add-key``: the restricted authorized_keys line, exactly; bad keys refused;
an invitation for a customer without a policy refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli import main
from gateway.commands.customer import CustomerError, authorized_keys_line
from gateway.operations.scaffold import InitOptions, init_directory


def public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def test_the_line_forces_the_customers_view_and_restricts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init_directory(InitOptions(directory=tmp_path / "box"))
    pub = tmp_path / "anna.pub"
    key = public_key()
    pub.write_text(key + " anna@laptop\n")
    keys = tmp_path / "home" / ".ssh" / "authorized_keys"
    customer = "baeckerei-schmidt"
    code = main(
        [
            "customer",
            "add-key",
            "--config",
            str(config),
            "--customer",
            customer,
            str(pub),
            "--authorized-keys",
            str(keys),
        ]
    )
    assert code == 0, capsys.readouterr().err
    line = keys.read_text().splitlines()
    expected = (
        f'command="einblick tui --config {config.resolve()} --customer {customer}",restrict,pty '
        f"{key} einblick-customer-{customer}"
    )
    assert line == [expected]
    assert keys.stat().st_mode & 0o777 == 0o600
    assert keys.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "text",
    [
        "ssh-ed25519 AAAAnotbase64",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        'command="sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI',
        "",
        "ssh-ed25519\nssh-ed25519 AAAA",
    ],
)
def test_what_is_not_one_public_key_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(CustomerError):
        authorized_keys_line(text, "baeckerei", tmp_path / "einblick.yaml")


def test_a_customer_name_cannot_break_out_of_the_command(tmp_path: Path) -> None:
    with pytest.raises(CustomerError):
        authorized_keys_line(public_key(), 'x" ssh-ed25519', tmp_path / "einblick.yaml")


def test_an_invitation_needs_the_customers_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = init_directory(InitOptions(directory=tmp_path / "box"))
    assert (
        main(["customer", "invite", "--config", str(config), "--customer", "nobody", "--name", "N"])
        == 2
    )
    assert "no policy for customer 'nobody'" in capsys.readouterr().err
    assert (
        main(
            [
                "customer",
                "invite",
                "--config",
                str(config),
                "--customer",
                "baeckerei-schmidt",
                "--name",
                "Anna",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "/invite/" in out.out and "valid until" in out.err
