"""Art. 30 records for a DPO's tools: CSV (read back with the csv module) and DPV JSON-LD (read
back as RDF with rdflib), generated from the same data as the Markdown records."""

from __future__ import annotations

import csv
import io
import warnings
from datetime import UTC, datetime
from pathlib import Path

import orjson
import rdflib

from gateway.cli import main
from gateway.commands.rights import load_policies
from gateway.config import load_config
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights.records import CSV_COLUMNS, build_records, render_records

DPV = rdflib.Namespace("https://w3id.org/dpv#")
GDPR = rdflib.Namespace("https://w3id.org/dpv/legal/eu/gdpr#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")


def test_records_as_csv_and_dpv_json_ld_say_what_the_records_say(tmp_path: Path) -> None:
    config = load_config(init_directory(InitOptions(directory=tmp_path / "edge")))
    policies = load_policies(config)
    data = build_records(config, policies, now=datetime(2026, 5, 1, tzinfo=UTC))
    activities = data["activities"]

    rows = list(csv.DictReader(io.StringIO(render_records(data, "csv", "de"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["customer"], r["grant"]) for r in rows] == [
        (a["customer"], a["grant"]) for a in activities
    ]
    maintenance = next(r for r in rows if r["grant"] == "maintenance")
    assert maintenance["legal_basis"] == "contract"
    assert maintenance["legal_basis_text"] == "Vertragserfüllung (Art. 6 Abs. 1 lit. b DSGVO)"
    assert "pseudonymise" in maintenance["safeguards"].split("; ")
    assert maintenance["recipient_name"] == "Ofenbau Müller GmbH – Wartungscloud"

    document = render_records(data, "jsonld", "en")
    with warnings.catch_warnings():
        # rdflib 7's JSON-LD parser builds a ConjunctiveGraph inside, which it now deprecates.
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        graph = rdflib.Graph().parse(data=document, format="json-ld")
    processes = set(graph.subjects(rdflib.RDF.type, DPV.Process))
    assert len(processes) == len(activities)
    bases = {
        str(graph.value(p, DCT.identifier)): graph.value(p, DPV.hasLegalBasis) for p in processes
    }
    for a in activities:
        expected = {"consent": GDPR["A6-1-a"], "contract": GDPR["A6-1-b"]}.get(a["legal_basis"])
        if expected is not None:
            assert bases[f"{a['customer']}/{a['grant']}"] == expected
    process = next(
        p for p in processes if str(graph.value(p, DCT.identifier)).endswith("/maintenance")
    )
    measures = {
        graph.value(m, rdflib.RDF.type) for m in graph.objects(process, DPV.hasTechnicalMeasure)
    }
    assert DPV.Pseudonymisation in measures

    out = tmp_path / "records.csv"
    code = main(["records", "--config", str(config.source), "--format", "csv", "--out", str(out)])
    assert code == 0 and out.read_text(encoding="utf-8").startswith(",".join(CSV_COLUMNS))
    out = tmp_path / "records.jsonld"
    code = main(
        ["records", "--config", str(config.source), "--format", "jsonld", "--out", str(out)]
    )
    assert (
        code == 0 and orjson.loads(out.read_bytes())["@context"]["dpv"] == "https://w3id.org/dpv#"
    )
