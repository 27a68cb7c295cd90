"""Backups of boxes laid out unusually, and configurations that name no instance.

Offline (no gateway running): a real box from ``einblick init``, a real log written by the
log's own writer with the box's key, then backup and restore through the library functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.log.keys import Signer
from gateway.log.verify import verify_db
from gateway.operations.backup import BackupError, create_backup, restore_backup
from gateway.operations.scaffold import InitOptions, init_directory
from tests.log.conftest import Log, make_draft

RELEASE_DB = Path(__file__).resolve().parents[1] / "data" / "releases" / "0.1.0" / "einblick.db"


def _box_with_layout(root: Path) -> Path:
    """A box whose log and policies lie in var/ and pol/ instead of data/ and policies/."""
    config_path = init_directory(InitOptions(directory=root, instance="werk-nord-7"))
    (root / "data").rename(root / "var")
    (root / "policies").rename(root / "pol")
    text = config_path.read_text(encoding="utf-8")
    text = text.replace("data_dir: data", "data_dir: var").replace(
        "policies_dir: policies", "policies_dir: pol"
    )
    config_path.write_text(text, encoding="utf-8")
    config = load_config(config_path)
    assert config.data_path == root / "var" and config.policies_path == root / "pol"
    signer = Signer.load(config.signing_key_path)
    log = Log(config.database_path, signer)
    log.writer.origin = config.instance
    log.conn.execute("UPDATE meta SET value = ? WHERE key = 'origin'", (config.instance,))
    log.write([make_draft(i) for i in range(12)])
    log.close()
    return config_path


def test_a_box_with_its_own_layout_restores_to_one_that_finds_its_log_and_policies(
    tmp_path: Path,
) -> None:
    config_path = _box_with_layout(tmp_path / "box")
    archive = tmp_path / "box.tar.gz"
    manifest = create_backup(load_config(config_path), archive)
    assert manifest.config_rewritten
    restored = restore_backup(archive, tmp_path / "new")
    config = load_config(restored.config)
    # The restored configuration points at where the files now are, not at var/ and pol/.
    assert config.database_path == tmp_path / "new" / "data" / "einblick.db"
    assert config.database_path.is_file()
    assert sorted(p.name for p in config.policies_path.glob("*.yaml"))
    assert config.instance == "werk-nord-7"
    report = verify_db(config.database_path, public_key=Signer.load(config.signing_key_path).public)
    assert report.ok and report.entries == 12


def test_a_box_whose_gateway_never_ran_is_refused_with_a_reason(tmp_path: Path) -> None:
    config_path = init_directory(InitOptions(directory=tmp_path / "box"))
    with pytest.raises(BackupError, match=r"no log at .* yet"):
        create_backup(load_config(config_path), tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_a_configuration_without_an_instance_takes_the_one_its_log_carries(
    tmp_path: Path,
) -> None:
    # 0.1.0 defaulted to 'edge-01'; today a missing name defaults to this box's own. A box
    # upgraded (or restored elsewhere) with no 'instance:' line must keep its log's origin.
    config_path = init_directory(InitOptions(directory=tmp_path / "box", instance="neu-1"))
    text = "\n".join(
        line
        for line in config_path.read_text(encoding="utf-8").splitlines()
        if not line.startswith("instance:")
    )
    config_path.write_text(text + "\n", encoding="utf-8")
    assert load_config(config_path).instance != "edge-01"  # no log yet: the box's own name
    shutil.copyfile(RELEASE_DB, tmp_path / "box" / "data" / "einblick.db")
    assert load_config(config_path).instance == "edge-01"
